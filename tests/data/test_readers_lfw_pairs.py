import collections

import pytest

from facezoo.data.lfw_pairs import LfwIdentityReader, LfwPair, lfw_image_dir, read_pairs
from facezoo.data.records import DataFormatError

PEOPLE = {"Abel_Pacheco": 4, "Zico": 3, "Dean_Barker": 1, "Ty_Votaw": 2}
# 2 folds x (1 same + 1 different) pairs.
PAIRS = ["2\t1", "Abel_Pacheco\t1\t4", "Abel_Pacheco\t2\tDean_Barker\t1",
         "Zico\t2\t3", "Ty_Votaw\t1\tZico\t1"]


@pytest.fixture
def lfw(tmp_path, write_jpeg):
    for name, count in PEOPLE.items():
        for i in range(1, count + 1):
            write_jpeg(tmp_path / "lfw-deepfunneled" / name / f"{name}_{i:04d}.jpg")
    (tmp_path / "pairs.txt").write_text("\n".join(PAIRS) + "\n")
    return tmp_path


def test_read_pairs(lfw):
    image_dir = lfw / "lfw-deepfunneled"
    pairs = read_pairs(lfw / "pairs.txt", lfw)
    assert pairs[0] == LfwPair(str(image_dir / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"),
                               str(image_dir / "Abel_Pacheco" / "Abel_Pacheco_0004.jpg"), True, 1)
    assert [(p.same, p.fold) for p in pairs] == [(True, 1), (False, 1), (True, 2), (False, 2)]
    assert pairs[3].path_b.endswith("Zico/Zico_0001.jpg")
    assert read_pairs(lfw / "pairs.txt", image_dir) == pairs


def write_pairs(root, lines):
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root / "pairs.txt"


@pytest.mark.parametrize("lines, message", [
    (["2 x"] + PAIRS[1:], r"pairs.txt:1: header must be two positive integers"),
    (PAIRS[:-1], r"promises 2 folds x 2 x 1 = 4 pair lines, found 3 \(last line: 4\)"),
    (PAIRS + ["Zico\t1\t2"], r"found 5 \(first extra line: 6\)"),
    (PAIRS[:3] + PAIRS[4:] + PAIRS[3:4], r"pairs.txt:4: fold 2 expects a same-person"),
    (PAIRS[:1] + ["Abel_Pacheco\tone\t4"] + PAIRS[2:], r"pairs.txt:2: image numbers must be positive"),
])
def test_read_pairs_format_errors(lfw, lines, message):
    with pytest.raises(DataFormatError, match=message):
        read_pairs(write_pairs(lfw, lines), lfw)


def test_read_pairs_missing_images(lfw):
    lines = PAIRS[:1] + ["Abel_Pacheco\t9\t4", "Nobody\t1\tZico\t1", "Zico\t2\t3", "Ty_Votaw\t1\tZico\t1"]
    with pytest.raises(DataFormatError, match=r"2 image\(s\) .* missing .*line 2: Abel_Pacheco/Abel_Pacheco_0009"
                                              r".jpg; line 3: Nobody/Nobody_0001.jpg"):
        read_pairs(write_pairs(lfw, lines), lfw)


def test_several_image_folders_are_ambiguous(lfw):
    (lfw / "lfw").mkdir()
    with pytest.raises(DataFormatError, match="several LFW image folders"):
        lfw_image_dir(str(lfw))


def test_identity_reader(lfw, write_jpeg):
    write_jpeg(lfw / "lfw-deepfunneled" / "Zico" / "Zico_0001.jpg.bak.png")
    reader = LfwIdentityReader(lfw)
    records = list(reader.records())
    assert collections.Counter(r.identity for r in records) == PEOPLE
    assert records[0].source == "lfw-deepfunneled/Abel_Pacheco/Abel_Pacheco_0001.jpg"
    assert {r.split for r in records} == {"train"} and all(r.labels == {} for r in records)
    assert [p.source for p in reader.problems] == ["lfw-deepfunneled/Zico/Zico_0001.jpg.bak.png"]
    two_or_more = list(LfwIdentityReader(lfw, min_images=2).records())
    assert {r.identity for r in two_or_more} == {"Abel_Pacheco", "Zico", "Ty_Votaw"}


@pytest.mark.real_data
def test_real_pairs_and_identities(shared_data):
    root = shared_data("lfw")
    pairs = read_pairs(root / "pairs.txt", root)
    assert len(pairs) == 4800
    assert collections.Counter((p.fold, p.same) for p in pairs) == {
        (fold, same): 300 for fold in range(1, 9) for same in (True, False)}
    reader = LfwIdentityReader(root)
    identities = collections.Counter(r.identity for r in reader.records())
    assert sum(identities.values()) == 8145 and not reader.problems
