import pytest

from facezoo.attributes import MAX_AGE
from facezoo.data.morph import MorphReader, parse_age
from facezoo.data.records import DataFormatError

HEADER = "id_num,picture_num,dob,doa,race,gender,facial_hair,age,age_diff,glasses,photo"


def write_csv(root, lines, name="MORPH_Album2.csv"):
    (root / name).write_text("\n".join(lines) + "\n")


@pytest.fixture
def morph(tmp_path, write_jpeg):
    for name in ("000001_00M21", "000001_01M23", "000002_00F30", "000003_00M40", "000004_00F50"):
        write_jpeg(tmp_path / "Album2" / f"{name}.JPG")
    write_csv(tmp_path, [
        HEADER,
        "000001,0,1/1/1980,1/1/2001,B,M,0,21,0,0,Album2/000001_00M21.JPG",     # line 2
        "000001,1,1/1/1980,1/1/2003,B,M,0,23.0,2,0,Album2/000001_01M23.JPG",   # line 3
        "000002,0,1/1/1950,1/1/2080,H,F,0,130,0,0,Album2/000002_00F30.JPG",    # line 4: age clipped
        "000003,0,1/1/1960,1/1/2000,X,?,0,40,0,0,Album2/000003_00M40.JPG",     # line 5: bad race, gender
        "000004,0,1/1/1950,1/1/2000,Q,Z,0,-3,0,0,Album2/000004_00F50.JPG",     # line 6: nothing usable
        "000005,0,1/1/1950,1/1/2000,W,F,0,50,0,0,Album2/000005_00F50.JPG",     # line 7: image missing
        "000006,0,1/1/1950",                                                   # line 8: truncated
    ])
    return tmp_path


def test_labels_identities_and_reports(morph):
    reader = MorphReader(morph)
    records = list(reader.records())
    assert [(r.source, r.labels, r.identity, r.split) for r in records] == [
        ("Album2/000001_00M21.JPG", {"age": 21, "gender": 0, "race": 0}, "000001", "train"),
        ("Album2/000001_01M23.JPG", {"age": 23, "gender": 0, "race": 0}, "000001", "train"),
        ("Album2/000002_00F30.JPG", {"age": MAX_AGE, "gender": 1, "race": 2}, "000002", "train"),
        ("Album2/000003_00M40.JPG", {"age": 40}, "000003", "train"),
    ]
    problems = [(p.source, p.reason) for p in reader.problems]
    assert [s for s, _ in problems] == ["MORPH_Album2.csv:5", "MORPH_Album2.csv:5", "MORPH_Album2.csv:6",
                                        "MORPH_Album2.csv:7", "MORPH_Album2.csv:8"]
    assert "field 'gender': expected one of ['F', 'M'], got '?'; label left out" == problems[0][1]
    assert "field 'race'" in problems[1][1] and "'X'" in problems[1][1]
    assert problems[2][1].startswith("row skipped: no usable label (field 'age'")
    assert "Album2/000005_00F50.JPG does not exist" in problems[3][1]
    assert "expected 11 fields" in problems[4][1]


def test_parse_age():
    assert [parse_age(t) for t in ("0", "29", "29.0", "150", "29.5", "-1", "nan", "x", "")] == [
        0, 29, 29, MAX_AGE, None, None, None, None, None]


def test_missing_columns_list_header_found_and_expected(morph):
    write_csv(morph, ["ID_NUM, photo ,age,sex", "1,Album2/000001_00M21.JPG,21,M"])
    with pytest.raises(DataFormatError) as error:
        list(MorphReader(morph).records())
    message = str(error.value)
    assert "lacks column(s) ['gender', 'race']" in message
    assert "expected at least ['id_num', 'photo', 'age', 'gender', 'race']" in message
    assert "found ['id_num', 'photo', 'age', 'sex']" in message


def test_csv_discovery(morph):
    write_csv(morph, [HEADER], name="other.csv")
    with pytest.raises(DataFormatError, match=r"exactly one \*.csv .*found \['MORPH_Album2.csv', 'other.csv'\]"):
        MorphReader(morph)
    assert len(list(MorphReader(morph, csv="MORPH_Album2.csv").records())) == 4
    with pytest.raises(FileNotFoundError):
        MorphReader(morph, csv="nope.csv")


def test_no_image_found(morph):
    write_csv(morph, [HEADER, "9,0,,,W,M,0,30,0,0,Album2/missing.JPG"])
    with pytest.raises(DataFormatError, match="not one photo"):
        list(MorphReader(morph).records())
