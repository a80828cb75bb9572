"""UtkFaceReader: labels from file names, malformed names reported and skipped."""
import pytest

from facezoo.attributes import MAX_AGE
from facezoo.data.utkface import UtkFaceReader

GOOD = ["25_0_2_20170116174525125.jpg.chip.jpg", "110_1_0_20170109142408075.jpg.chip.jpg"]
BAD = {
    "39_1_20170116174525125.jpg.chip.jpg": "4 '_'-separated fields",
    "x_1_0_20170116174525125.jpg.chip.jpg": "integers",
    "30_2_0_20170116174525125.jpg.chip.jpg": "gender",
    "30_0_7_20170116174525125.jpg.chip.jpg": "race",
    "300_0_0_20170116174525125.jpg.chip.jpg": "age",
}


@pytest.mark.parametrize("subdir", [True, False])
def test_labels_and_problems(utk_layout, subdir):
    root = utk_layout(GOOD + list(BAD), subdir=subdir)
    reader = UtkFaceReader(root)
    records = list(reader.records())
    assert [r.labels for r in records] == [{"age": MAX_AGE, "gender": 1, "race": 0},
                                           {"age": 25, "gender": 0, "race": 2}]
    assert records[0].source == ("UTKFace/" if subdir else "") + GOOD[1]
    assert all(r.identity is None and r.split == "train" for r in records)
    reasons = {p.source: p.reason for p in reader.problems}
    assert set(reasons) == set(BAD)
    for name, word in BAD.items():
        assert word in reasons[name]


def test_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .jpg"):
        list(UtkFaceReader(tmp_path).records())
