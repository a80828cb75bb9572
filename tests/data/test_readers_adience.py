import collections
import os

import pytest

from facezoo.data.adience import AdienceReader
from facezoo.data.records import DataFormatError

HEADER = ("user_id\toriginal_image\tface_id\tage\tgender\tx\ty\tdx\tdy\ttilt_ang\t"
          "fiducial_yaw_angle\tfiducial_score")


def row(user, image, face, age, gender):
    return f"{user}\t{image}\t{face}\t{age}\t{gender}\t0\t414\t1086\t1383\t-115\t30\t17"


def write_fold(root, k, rows):
    # The real files end without a final line break.
    (root / f"fold_{k}_data.txt").write_text("\n".join([HEADER] + rows), encoding="utf-8")


def face(root, write_jpeg, user, image, face_id, folder="faces", prefix="coarse_tilt_aligned_face"):
    write_jpeg(root / folder / user / f"{prefix}.{face_id}.{image}")


@pytest.fixture
def adience(tmp_path, write_jpeg):
    write_fold(tmp_path, 0, [
        row("u1@N01", "a_o.jpg", 1, "(25, 32)", "f"),   # line 2: both labels
        row("u1@N01", "a_o.jpg", 2, "35", "m"),         # line 3: age fits no group
        row("u1@N01", "b_o.jpg", 1, "None", "u"),       # line 4: neither label
        row("u2@N02", "c_o.jpg", 1, "(38, 42)", ""),    # line 5: off-grid range, empty gender
        "u2@N02\tc_o.jpg\t2\t(0, 2)",                   # line 6: truncated row
        row("u2@N02", "gone_o.jpg", 1, "(0, 2)", "m"),  # line 7: image missing
    ])
    write_fold(tmp_path, 1, [row("u3@N03", "d_o.jpg", 5, "(60, 100)", "m")])
    for user, image, face_id in [("u1@N01", "a_o.jpg", 1), ("u1@N01", "a_o.jpg", 2), ("u1@N01", "b_o.jpg", 1),
                                 ("u2@N02", "c_o.jpg", 1), ("u3@N03", "d_o.jpg", 5)]:
        face(tmp_path, write_jpeg, user, image, face_id)
    return tmp_path


def test_labels_splits_identities_and_reports(adience):
    reader = AdienceReader(adience)
    records = list(reader.records())
    got = [(r.source, r.labels, r.split, r.identity) for r in records]
    assert got == [
        ("faces/u1@N01/coarse_tilt_aligned_face.1.a_o.jpg", {"age_group": 4, "gender": 1}, "fold_0", "u1@N01"),
        ("faces/u1@N01/coarse_tilt_aligned_face.2.a_o.jpg", {"gender": 0}, "fold_0", "u1@N01"),
        ("faces/u2@N02/coarse_tilt_aligned_face.1.c_o.jpg", {"age_group": 5}, "fold_0", "u2@N02"),
        ("faces/u3@N03/coarse_tilt_aligned_face.5.d_o.jpg", {"age_group": 7, "gender": 0}, "fold_1", "u3@N03"),
    ]
    assert all(os.path.isfile(r.image) for r in records)
    problems = {p.source: p.reason for p in reader.problems}
    assert set(problems) == {"fold_0_data.txt:3", "fold_0_data.txt:4", "fold_0_data.txt:5",
                             "fold_0_data.txt:6", "fold_0_data.txt:7"}
    assert "'35' fits no age group" in problems["fold_0_data.txt:3"]
    assert problems["fold_0_data.txt:4"].startswith("row skipped: no usable label")
    assert "expected 'm' or 'f', got ''" in problems["fold_0_data.txt:5"]
    assert "expected 12 fields" in problems["fold_0_data.txt:6"]
    assert "gone_o.jpg does not exist" in problems["fold_0_data.txt:7"]


def test_folds_argument_and_aligned_folder(tmp_path, write_jpeg):
    write_fold(tmp_path, 0, [row("u1", "a.jpg", 1, "(4, 6)", "m")])
    write_fold(tmp_path, 3, [row("u2", "b.jpg", 1, "(8, 12)", "f")])
    face(tmp_path, write_jpeg, "u1", "a.jpg", 1, "aligned", "landmark_aligned_face")
    face(tmp_path, write_jpeg, "u2", "b.jpg", 1, "aligned", "landmark_aligned_face")
    assert [r.split for r in AdienceReader(tmp_path).records()] == ["fold_0", "fold_3"]
    records = list(AdienceReader(tmp_path, folds=[3]).records())
    assert [(r.source, r.labels) for r in records] == [
        ("aligned/u2/landmark_aligned_face.1.b.jpg", {"age_group": 2, "gender": 1})]
    with pytest.raises(FileNotFoundError, match="fold_1_data.txt"):
        AdienceReader(tmp_path, folds=[1])
    with pytest.raises(ValueError, match="0..4"):
        AdienceReader(tmp_path, folds=[5])


def test_no_image_at_all_raises(tmp_path):
    write_fold(tmp_path, 0, [row("u1", "a.jpg", 1, "(4, 6)", "m")])
    (tmp_path / "faces").mkdir()
    reader = AdienceReader(tmp_path)
    with pytest.raises(DataFormatError, match="not one image"):
        list(reader.records())
    assert len(reader.problems) == 1


def test_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no fold_<k>_data.txt"):
        AdienceReader(tmp_path)
    write_fold(tmp_path, 0, [])
    with pytest.raises(DataFormatError, match="neither faces/ nor aligned/"):
        AdienceReader(tmp_path)
    (tmp_path / "faces").mkdir()
    (tmp_path / "fold_0_data.txt").write_text("user_id\toriginal_image\tface\tage\tsex\n1\t2\t3\t4\t5\n")
    with pytest.raises(DataFormatError, match=r"lacks column\(s\) \['face_id', 'gender'\].*found \['user_id'"):
        list(AdienceReader(tmp_path).records())


@pytest.mark.real_data
def test_real_fold_files_with_the_staged_faces(shared_data):
    reader = AdienceReader(shared_data("adience"))
    records = list(reader.records())
    assert len(records) == 19
    assert {r.split for r in records} == {"fold_0"} and {r.identity for r in records} == {"30601258@N03"}
    assert all(r.labels.keys() == {"age_group", "gender"} for r in records)
    assert len(reader.problems) == 4484 + 3730 - 19
    assert all("does not exist" in p.reason for p in reader.problems)


@pytest.mark.real_data
def test_real_fold_files_label_quirks(shared_data, tmp_path):
    """Every real row against placeholder files, to count what the label quirks do."""
    real = shared_data("adience")
    for k in (0, 1):
        os.symlink(real / f"fold_{k}_data.txt", tmp_path / f"fold_{k}_data.txt")
        with open(real / f"fold_{k}_data.txt", encoding="utf-8") as f:
            for line in list(f)[1:]:
                user, image, face_id = line.split("\t")[:3]
                folder = tmp_path / "faces" / user
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"coarse_tilt_aligned_face.{face_id}.{image}").touch()
    reader = AdienceReader(tmp_path)
    records = list(reader.records())
    kinds = collections.Counter(
        "skipped" if p.reason.startswith("row skipped") else p.reason.split(":")[0] for p in reader.problems)
    assert kinds == {"skipped": 77, "field 'age'": 648, "field 'gender'": 533}
    assert len(records) == 4484 + 3730 - 77
    assert collections.Counter(r.split for r in records) == {"fold_0": 4484 - 52, "fold_1": 3730 - 25}
