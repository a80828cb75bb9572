import pytest

from facezoo.attributes import LFWA_40
from facezoo.data.lfwa import LfwaReader
from facezoo.data.records import DataFormatError


def values(**set_to):
    """40 values, -1 except the attributes given."""
    return " ".join(str(set_to.get(n, -1)) for n in LFWA_40.names)


def write_attributes(root, rows, count=None, names=None):
    lines = [str(len(rows) if count is None else count), " ".join(names or LFWA_40.names)] + rows
    (root / "list_attr_lfwa.txt").write_text("\r\n".join(lines) + "\r\n")


@pytest.fixture
def lfwa(tmp_path, write_jpeg):
    for name in ("Aaron_Eckhart_0001.jpg", "Zico_0002.jpg", "Zico_0003.jpg", "Zico_0004.jpg"):
        write_jpeg(tmp_path / "lfw" / name.rsplit("_", 1)[0] / name)
    write_attributes(tmp_path, [
        "Aaron_Eckhart_0001.jpg  " + values(Male=1, Smiling=0),   # line 3: Smiling not annotated
        "Zico_0002.jpg " + values(Male=1, Young=1),               # line 4
        "Zico_0003.jpg " + values(Male=2),                        # line 5: bad value
        "Zico_0004.jpg 1 -1",                                     # line 6: too few values
        "Nobody_0001.jpg " + values(),                            # line 7: image missing
        "Zico_0002.jpg " + values(),                              # line 8: repeated
        "zico.jpg " + values(),                                   # line 9: not <Name>_NNNN.jpg
    ])
    return tmp_path


def test_labels_identities_and_reports(lfwa):
    reader = LfwaReader(lfwa)
    records = list(reader.records())
    assert [(r.source, r.identity, r.split) for r in records] == [
        ("lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg", "Aaron_Eckhart", "train"),
        ("lfw/Zico/Zico_0002.jpg", "Zico", "train")]
    first, second = records[0].labels, records[1].labels
    assert "Smiling" not in first and len(first) == 39 and first["Male"] == 1 and first["Bald"] == 0
    assert len(second) == 40 and second["Young"] == 1 and second["Smiling"] == 0
    problems = {p.source: p.reason for p in reader.problems}
    assert sorted(problems) == [f"list_attr_lfwa.txt:{n}" for n in range(5, 10)]
    assert "Male='2'" in problems["list_attr_lfwa.txt:5"]
    assert "expected 40 values, got 2" in problems["list_attr_lfwa.txt:6"]
    assert "lfw/Nobody/Nobody_0001.jpg does not exist" in problems["list_attr_lfwa.txt:7"]
    assert "listed again" in problems["list_attr_lfwa.txt:8"]
    assert "<Name>_<NNNN>.jpg" in problems["list_attr_lfwa.txt:9"]


def test_header_errors(lfwa):
    write_attributes(lfwa, ["Zico_0002.jpg " + values()], count=2)
    with pytest.raises(DataFormatError, match=r"list_attr_lfwa.txt:1: declares 2 rows, found 1"):
        list(LfwaReader(lfwa).records())
    names = list(LFWA_40.names)
    names[3] = "Eye_Bags"
    write_attributes(lfwa, ["Zico_0002.jpg " + values()], names=names)
    with pytest.raises(DataFormatError, match=r":2: .*column 4: expected 'Bags_Under_Eyes', got 'Eye_Bags'"):
        list(LfwaReader(lfwa).records())


def test_no_listed_image_exists(lfwa):
    write_attributes(lfwa, ["Nobody_0001.jpg " + values()])
    with pytest.raises(DataFormatError, match="not one image"):
        list(LfwaReader(lfwa).records())


def test_missing_attribute_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="list_attr_lfwa.txt"):
        LfwaReader(tmp_path)
