import pytest

from facezoo.attributes import ADIENCE, GENDER_CSV
from facezoo.data.generic_csv import CsvFolderReader
from facezoo.data.records import DataFormatError


@pytest.fixture
def layout(tmp_path, write_jpeg):
    for path in ("train/1.jpg", "train/2.jpg", "train/3.png", "test/10.jpg", "test/11.jpg"):
        write_jpeg(tmp_path / path)
    (tmp_path / "train.csv").write_text("id,label\n1,0\n2,female\n3.png,1\n")
    (tmp_path / "test.csv").write_text("id\n10\n11\n")
    (tmp_path / "sampleSubmit.csv").write_text("id,label\n10,0\n11,0\n")
    return tmp_path


def test_labels_splits_and_template(layout):
    reader = CsvFolderReader(layout)
    assert reader.label_space is GENDER_CSV
    records = list(reader.records())
    assert [(r.source, r.labels, r.split) for r in records] == [
        ("train/1.jpg", {"gender": 0}, "train"), ("train/2.jpg", {"gender": 1}, "train"),
        ("train/3.png", {"gender": 1}, "train"), ("test/10.jpg", {}, "test"), ("test/11.jpg", {}, "test")]
    assert reader.submission_template() == (["id", "label"], ["10", "11"])


def test_test_labels_are_optional_per_row(layout):
    (layout / "test.csv").write_text("id,label\n10,1\n11,\n")
    assert [r.labels for r in CsvFolderReader(layout).records() if r.split == "test"] == [{"gender": 1}, {}]


def test_missing_images_raise_with_examples(layout):
    (layout / "train.csv").write_text("id,label\n1,0\n7,1\n8,1\n")
    with pytest.raises(DataFormatError, match=r"train.csv: 2 image\(s\) missing .*line 3: train/7; line 4: train/8"):
        list(CsvFolderReader(layout).records())


@pytest.mark.parametrize("table, message", [
    ("id,label\n1,2\n2,\n", r"field 'label': expected a class index 0-1 or a name in \['male', 'female'\]; "
                            r"2 row\(s\) got: line 2: '2'; line 3: ''"),
    ("id,label\n1,0\n1,1\n", r"line 3: id '1' repeats line 2"),
    ("id,label\n1,0,extra\n", r"malformed row\(s\): line 2: expected 2 fields"),
    ("id\n1\n", r"train.csv:1: a training table needs the columns \['id', 'label'\]"),
    ("name,label\n1,0\n", r"lacks column\(s\) \['id'\]"),
])
def test_table_errors(layout, table, message):
    (layout / "train.csv").write_text(table)
    with pytest.raises(DataFormatError, match=message):
        list(CsvFolderReader(layout).records())


def test_constructor_errors(layout, tmp_path_factory):
    with pytest.raises(ValueError, match="exactly one attribute"):
        CsvFolderReader(layout, label_space=ADIENCE)
    with pytest.raises(FileNotFoundError, match="neither train.csv nor test.csv"):
        CsvFolderReader(tmp_path_factory.mktemp("empty"))
    (layout / "sampleSubmit.csv").unlink()
    with pytest.raises(FileNotFoundError):
        CsvFolderReader(layout).submission_template()
