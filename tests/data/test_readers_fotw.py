import pytest

from facezoo.data.fotw import FotwReader, split_from_name
from facezoo.data.records import DataFormatError


@pytest.fixture
def fotw(tmp_path, write_jpeg):
    for i in range(1, 6):
        write_jpeg(tmp_path / "train" / f"{i:04d}.jpg")
    (tmp_path / "train.csv").write_text("\n".join([
        "Image,x,y,w,h,Smile,Gender",
        "train/0001.jpg,1,2,30,30,1,0",      # line 2
        "train/0002.jpg,1,2,30,30,0,1",      # line 3
        "train/0003.jpg,1,2,30,30,2,-1",     # line 4: other expression, other gender
        "train/0004.jpg,1,2,30,30,,1",       # line 5: smile empty
        "train/0005.jpg,1,2,30,30,yes,1",    # line 6: bad smile value
        "train/0009.jpg,1,2,30,30,1,1",      # line 7: missing image
    ]) + "\n")
    (tmp_path / "val_accessories.csv").write_text(
        "image,hat,headband,glasses,earrings,necklace,tie,scarf\n"
        "train/0001.jpg,1,0,-1,0,0,0,1\n")
    return tmp_path


def test_smile_gender_labels_and_reports(fotw):
    reader = FotwReader(fotw)
    records = list(reader.records())
    assert [(r.source, r.labels, r.split, r.identity) for r in records] == [
        ("train/0001.jpg", {"gender": 0, "smile": 1}, "train", None),
        ("train/0002.jpg", {"gender": 1, "smile": 0}, "train", None),
        ("train/0004.jpg", {"gender": 1}, "train", None),
        ("train/0005.jpg", {"gender": 1}, "train", None),
    ]
    problems = [(p.source, p.reason) for p in reader.problems]
    assert problems == [
        ("train.csv:4", "row skipped: no usable label"),
        ("train.csv:6", "field 'smile': expected 1, 0, -1, 2 or empty, got 'yes'; label left out"),
        ("train.csv:7", "row skipped: image 'train/0009.jpg' does not exist"),
    ]


def test_accessories_and_split_from_name(fotw):
    records = list(FotwReader(fotw, csv="val_accessories.csv").records())
    assert [(r.labels, r.split) for r in records] == [(
        {"hat": 1, "headband": 0, "earrings": 0, "necklace": 0, "tie": 0, "scarf": 1}, "val")]
    assert [split_from_name(n) for n in ("Train.csv", "valid.csv", "test_smile.csv", "fotw.csv")] == [
        "train", "val", "test", None]
    (fotw / "fotw.csv").write_text("image,smile\n")
    with pytest.raises(DataFormatError, match="pass split="):
        FotwReader(fotw, csv="fotw.csv")
    assert FotwReader(fotw, csv="fotw.csv", split="test").split == "test"


def test_header_errors(fotw):
    (fotw / "train.csv").write_text("image,x,y,w,h\ntrain/0001.jpg,1,2,3,4\n")
    with pytest.raises(DataFormatError, match=r"train.csv:1: header names no label column.*found \['image'"):
        list(FotwReader(fotw).records())
    (fotw / "train.csv").write_text("train/0001.jpg,1,0\n")
    with pytest.raises(DataFormatError, match=r"lacks column\(s\) \['image'\]"):
        list(FotwReader(fotw).records())
