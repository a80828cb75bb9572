import collections

import pytest

from facezoo.data.ckplus import CkPlusReader
from facezoo.data.records import DataFormatError, identity_split


@pytest.fixture
def ckplus(tmp_path, write_jpeg):
    for path in ("anger/S010_004_00000017.png", "anger/S010_004_00000018.png", "happy/S011_006_00000013.png",
                 "contempt/S138_008_00000007.png", "happy/S011_006_00000013 (copy).png"):
        write_jpeg(tmp_path / "CK+48" / path, size=(48, 48), mode="L")
    return tmp_path


def test_labels_identities_and_reports(ckplus):
    reader = CkPlusReader(ckplus)
    records = list(reader.records())
    assert [(r.source, r.labels, r.identity, r.split) for r in records] == [
        ("CK+48/anger/S010_004_00000017.png", {"expression": 0}, "S010", "train"),
        ("CK+48/anger/S010_004_00000018.png", {"expression": 0}, "S010", "train"),
        ("CK+48/contempt/S138_008_00000007.png", {"expression": 1}, "S138", "train"),
        ("CK+48/happy/S011_006_00000013.png", {"expression": 4}, "S011", "train"),
    ]
    assert [p.source for p in reader.problems] == ["CK+48/happy/S011_006_00000013 (copy).png"]


def test_layout_errors(ckplus, tmp_path_factory):
    (ckplus / "CK+48" / "neutral").mkdir()
    with pytest.raises(DataFormatError, match=r"class folder\(s\) \['neutral'\]"):
        list(CkPlusReader(ckplus).records())
    with pytest.raises(DataFormatError, match="CK\\+48.* does not exist"):
        CkPlusReader(tmp_path_factory.mktemp("empty"))


@pytest.mark.real_data
def test_real_subjects_never_straddle_a_split(shared_data):
    reader = CkPlusReader(shared_data("ckplus"))
    records = list(reader.records())
    assert len(records) == 777 and not reader.problems
    assert len({r.identity for r in records}) == 93
    assert collections.Counter(r.labels["expression"] for r in records)[6] == 204   # surprise
    splits = collections.defaultdict(set)
    for r in identity_split(records):
        splits[r.identity].add(r.split)
    assert all(len(s) == 1 for s in splits.values())
