import pytest

from facezoo.attributes import DISFA_AUS
from facezoo.data import READERS
from facezoo.data.disfa import DisfaReader
from facezoo.data.records import DataFormatError
from facezoo.errors import MissingDataError, UsageError


def write_subject(root, write_jpeg, subject, intensities, frames=None, aus=DISFA_AUS):
    """Label files (intensities: frame -> {au: intensity}, other AUs 0) and frames as 1-based 5-digit PNGs."""
    folder = root / "ActionUnit_Labels" / subject
    folder.mkdir(parents=True, exist_ok=True)
    for au in aus:
        (folder / f"{subject}_au{au}.txt").write_text(
            "".join(f"{f},{v.get(au, 0)}\n" for f, v in sorted(intensities.items())))
    for i, frame in enumerate(frames if frames is not None else sorted(intensities)):
        write_jpeg(root / "frames" / subject / f"{frame:05d}.png", size=(8, 8), seed=i)
    return folder


def test_occurrence_is_intensity_two_or_more(tmp_path, write_jpeg):
    write_subject(tmp_path, write_jpeg, "SN001", {1: {12: 1}, 2: {12: 2, 25: 5}, 3: {1: 3, 26: 4}})
    write_subject(tmp_path, write_jpeg, "SN010", {1: {4: 2}})
    reader = READERS["disfa"](tmp_path)
    records = list(reader.records())
    assert reader.problems == []
    assert [(r.source, r.identity) for r in records] == [
        ("frames/SN001/00001.png", "SN001"), ("frames/SN001/00002.png", "SN001"),
        ("frames/SN001/00003.png", "SN001"), ("frames/SN010/00001.png", "SN010")]
    positives = [sorted(a for a, v in r.labels.items() if v) for r in records]
    assert positives == [[], ["AU12", "AU25"], ["AU1", "AU26"], ["AU4"]]
    assert all(set(r.labels) == {f"AU{a}" for a in DISFA_AUS} for r in records)
    assert reader.label_space.names == [f"AU{a}" for a in DISFA_AUS]


def test_intensity_mode_and_threshold(tmp_path, write_jpeg):
    write_subject(tmp_path, write_jpeg, "SN002", {5: {9: 1, 12: 4}}, aus=(9, 12))
    intensity = DisfaReader(tmp_path, aus=(9, 12), labels="intensity")
    assert [r.labels for r in intensity.records()] == [{"AU9": 1, "AU12": 4}]
    assert intensity.label_space["AU12"].kind == "ordinal" and intensity.label_space["AU12"].num_classes == 6
    assert [r.labels for r in DisfaReader(tmp_path, aus=(9, 12), threshold=1).records()] == [{"AU9": 1, "AU12": 1}]
    with pytest.raises(UsageError, match="labels must be one of"):
        DisfaReader(tmp_path, labels="presence")
    with pytest.raises(UsageError, match="threshold"):
        DisfaReader(tmp_path, threshold=0)


def test_malformed_lines_missing_files_and_frames(tmp_path, write_jpeg):
    folder = write_subject(tmp_path, write_jpeg, "SN003", {1: {}, 2: {}, 3: {}, 4: {}}, frames=[1, 2, 3],
                           aus=(1, 2, 4))
    (folder / "SN003_au2.txt").write_text("1,0\n2;3\n\n3,7\n3,1\n3,2\n")
    (folder / "SN003_au4.txt").unlink()
    (folder / "notes.txt").write_text("coded by rater 2\n")
    (tmp_path / "ActionUnit_Labels" / "README.txt").write_text("")
    reader = DisfaReader(tmp_path, aus=(1, 2, 4))
    records = list(reader.records())
    assert [r.source for r in records] == ["frames/SN003/00001.png", "frames/SN003/00002.png",
                                           "frames/SN003/00003.png"]
    assert [r.labels for r in records] == [{"AU1": 0, "AU2": 0}, {"AU1": 0}, {"AU1": 0, "AU2": 0}]
    where = {p.source: p.reason for p in reader.problems}
    assert set(where) == {"SN003_au2.txt:2", "SN003_au2.txt:4", "SN003_au2.txt:6", "ActionUnit_Labels/SN003",
                          "ActionUnit_Labels/SN003/notes.txt", "ActionUnit_Labels/README.txt", "frames/SN003"}
    assert "expected '<frame>,<intensity>'" in where["SN003_au2.txt:2"] and "'2;3'" in where["SN003_au2.txt:2"]
    assert "intensity 7 of frame 3 is outside 0-5" in where["SN003_au2.txt:4"]
    assert "frame 3 is listed twice" in where["SN003_au2.txt:6"]
    assert "no SN003_au4.txt: AU4 left out" in where["ActionUnit_Labels/SN003"]
    assert "1 labelled frame(s) have no image" in where["frames/SN003"] and "frames 4" in where["frames/SN003"]


def test_layout_errors(tmp_path, write_jpeg):
    with pytest.raises(MissingDataError, match="ActionUnit_Labels.* does not exist"):
        DisfaReader(tmp_path)
    (tmp_path / "ActionUnit_Labels" / "subject1").mkdir(parents=True)
    with pytest.raises(DataFormatError, match="no SN<digits> subject folder"):
        DisfaReader(tmp_path)
    write_subject(tmp_path, write_jpeg, "SN004", {1: {}}, frames=[])
    with pytest.raises(DataFormatError, match="not one labelled frame"):
        list(DisfaReader(tmp_path).records())
