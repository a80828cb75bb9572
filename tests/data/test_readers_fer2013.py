import collections
import os

import numpy as np
import pytest
from PIL import Image

from facezoo.data.fer2013 import Fer2013CsvReader, Fer2013FolderReader
from facezoo.data.records import DataFormatError


def pixels(value):
    return " ".join([str(value)] * 2304)


@pytest.fixture
def fer_csv(tmp_path):
    gradient = " ".join(str(i % 256) for i in range(2304))
    lines = [
        "emotion,pixels,Usage",
        f"3,{gradient},Training",          # line 2
        f"6,{pixels(7)},PublicTest",       # line 3
        f"0,{pixels(9)},PrivateTest",      # line 4
        f"7,{pixels(1)},Training",         # line 5: emotion out of range
        "2,1 2 3,Training",                # line 6: 3 pixels
        f"2,{pixels(300)},Training",       # line 7: value > 255
        f"1,{pixels(1)},Extra",            # line 8: unknown usage
        "4,Training",                      # line 9: missing field
    ]
    path = tmp_path / "fer2013.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_labels_splits_pngs_and_reports(fer_csv, tmp_path):
    cache = tmp_path / "cache"
    reader = Fer2013CsvReader(fer_csv, cache)
    records = list(reader.records())
    assert [(r.labels, r.split) for r in records] == [
        ({"expression": 3}, "train"), ({"expression": 6}, "val"), ({"expression": 0}, "test")]
    first = np.asarray(Image.open(records[0].image))
    assert first.shape == (48, 48) and first[0, 5] == 5 and first[47, 47] == 2303 % 256
    assert records[0].source.startswith("00000-") and records[0].image == str(cache / records[0].source)
    assert sorted(os.listdir(cache)) == sorted(r.source for r in records)
    problems = {p.source: p.reason for p in reader.problems}
    assert sorted(problems) == [f"fer2013.csv:{n}" for n in range(5, 10)]
    assert "field 'emotion': expected 0-6, got '7'" in problems["fer2013.csv:5"]
    assert "field 'pixels': expected 2304 integers 0-255, got 3 fields" in problems["fer2013.csv:6"]
    assert "got 2304 fields" in problems["fer2013.csv:7"]
    assert "field 'usage'" in problems["fer2013.csv:8"] and "'Extra'" in problems["fer2013.csv:8"]
    assert "expected 3 fields" in problems["fer2013.csv:9"]


def test_csv_cache_is_reused_and_follows_content(fer_csv, tmp_path):
    cache = tmp_path / "cache"
    first = [r.image for r in Fer2013CsvReader(fer_csv, cache).records()]
    stamps = [os.stat(p).st_mtime_ns for p in first]
    assert [r.image for r in Fer2013CsvReader(fer_csv, cache).records()] == first
    assert [os.stat(p).st_mtime_ns for p in first] == stamps
    fer_csv.write_text(f"emotion,pixels,Usage\n3,{pixels(42)},Training\n")
    changed = next(Fer2013CsvReader(fer_csv, cache).records())
    assert changed.image not in first and np.asarray(Image.open(changed.image)).max() == 42
    assert not [f for f in os.listdir(cache) if f.endswith(".tmp")]


def test_csv_variants_and_errors(tmp_path):
    variant = tmp_path / "icml_face_data.csv"
    variant.write_text(f"emotion, pixels\n5,{pixels(3)}\n")   # spaced header, no Usage column
    assert [r.split for r in Fer2013CsvReader(variant, tmp_path / "c").records()] == ["train"]
    variant.write_text(f"label,pixels\n5,{pixels(3)}\n")
    with pytest.raises(DataFormatError, match=r"lacks column\(s\) \['emotion'\]"):
        list(Fer2013CsvReader(variant, tmp_path / "c").records())
    variant.write_text("emotion,pixels\n9,1 2\n")
    with pytest.raises(DataFormatError, match="not one usable row"):
        list(Fer2013CsvReader(variant, tmp_path / "c").records())
    with pytest.raises(FileNotFoundError):
        Fer2013CsvReader(tmp_path / "none.csv", tmp_path / "c")


@pytest.fixture
def fer_folders(tmp_path, write_jpeg):
    for path in ("train/happy/Training_1.jpg", "train/angry/Training_2.jpg", "train/disgust/Training_3.jpg3.jpg",
                 "test/neutral/PublicTest_4.jpg", "test/sad/PrivateTest_5.jpg"):
        write_jpeg(tmp_path / path, size=(48, 48), mode="L")
    (tmp_path / "test" / "sad" / "notes.txt").write_text("x")
    return tmp_path


def test_folder_labels_splits_and_reports(fer_folders):
    reader = Fer2013FolderReader(fer_folders)
    records = list(reader.records())
    assert [(r.source, r.labels["expression"], r.split) for r in records] == [
        ("train/angry/Training_2.jpg", 0, "train"),
        ("train/happy/Training_1.jpg", 3, "train"),
        ("test/neutral/PublicTest_4.jpg", 6, "val"),
        ("test/sad/PrivateTest_5.jpg", 4, "test"),
    ]
    assert [p.source for p in reader.problems] == ["train/disgust/Training_3.jpg3.jpg", "test/sad/notes.txt"]


def test_folder_errors(fer_folders, tmp_path_factory):
    (fer_folders / "test" / "contempt").mkdir()
    with pytest.raises(DataFormatError, match=r"class folder\(s\) \['contempt'\]"):
        list(Fer2013FolderReader(fer_folders).records())
    with pytest.raises(DataFormatError, match="has none of"):
        Fer2013FolderReader(tmp_path_factory.mktemp("empty"))


@pytest.mark.real_data
def test_real_folders(shared_data):
    reader = Fer2013FolderReader(shared_data("fer2013"))
    records = list(reader.records())
    assert collections.Counter(r.split for r in records) == {"train": 28709, "val": 3589}
    happy = sum(1 for r in records if r.split == "train" and r.labels["expression"] == 3)
    assert happy == 7215 and not reader.problems
