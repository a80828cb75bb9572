"""The union data set of ``dmtl_face``: four sources re-framed by our detector, each with its own labels and split."""
import numpy as np
import pytest
from PIL import Image

from facezoo.attributes import CELEBA_NAMES
from facezoo.data import READERS
from facezoo.data.face_crops import aligned_crops
from facezoo.data.face_union import FACE, FaceUnionReader, LfwGenderReader
from facezoo.models.face_trunk import TRUNK_SPEC
from tests.face_union_layout import face_image, union_layout

def test_every_source_is_aligned_labelled_and_split_by_its_own_rule(tmp_path):
    root = union_layout(tmp_path / "data")
    reader = READERS["face"](root, cache_dir=str(tmp_path / "cache"), progress=False)
    records = list(reader.records())
    by_source = {}
    for r in records:
        by_source.setdefault(r.source.split("/")[0], []).append(r)
    assert {k: len(v) for k, v in by_source.items()} == {"celeba": 8, "utkface": 2, "lfw": 3, "fer2013": 2}
    for r in records:  # every crop is the 112x112 RGB face of the trunk's framing
        with Image.open(r.image) as im:
            assert im.size == (112, 112) and im.mode == "RGB"
        assert set(r.labels) <= set(FACE.names)
    assert all(set(r.labels) == set(CELEBA_NAMES) and r.labels["Male"] == 1 for r in by_source["celeba"])
    utk = {r.source.split("/")[-1][:2]: r.labels for r in by_source["utkface"]}
    assert utk == {"30": {"age": 30, "gender": 0, "race": 0}, "61": {"age": 61, "gender": 1, "race": 2}}
    lfw = {r.identity: (r.labels, r.split) for r in by_source["lfw"]}
    # People of the validation folds' pairs are validation; the face-less photo is reported and left out.
    assert lfw == {"lfw:Ann_One": ({"gender": 1}, "val"), "lfw:Cid_Three": ({"gender": 0}, "val"),
                   "lfw:Bob_Two": ({"gender": 0}, "train")}
    assert [p.reason for p in reader.problems] == ["no face found"]
    fer = {r.split: r.labels for r in by_source["fer2013"]}
    assert fer == {"train": {"expression": 3}, "val": {"expression": 4}}  # happy, sad in FER's index order
    # The grey 48x48 FER face is found on an enlargement and warped like the others: its crop is a face, grey.
    crop = np.asarray(Image.open(by_source["fer2013"][0].image), np.int16)
    assert crop.std() > 20 and np.abs(crop[..., 0] - crop[..., 1]).max() <= 1
    celeba_crop = np.asarray(Image.open(by_source["celeba"][0].image), np.float32)
    utk_crop = np.asarray(Image.open(by_source["utkface"][0].image), np.float32)
    assert np.abs(celeba_crop - utk_crop).mean() < 25  # the same face lands on the same framing


def test_one_source_folder_reads_only_that_source(tmp_path):
    root = union_layout(tmp_path / "data")
    records = list(FaceUnionReader(root / "lfw", cache_dir=str(tmp_path / "cache"), progress=False).records())
    assert {r.source.split("/")[0] for r in records} == {"lfw"} and len(records) == 3


def test_lfw_gender_lists_conflicts_are_reported(tmp_path):
    root = union_layout(tmp_path / "data")
    (root / "lfw" / "female_names.txt").write_text("Ann_One_0001.jpg\nCid_Three_0001.jpg\n")
    reader = LfwGenderReader(root / "lfw")
    records = list(reader.records())
    assert sorted(r.source.split("/")[-1] for r in records) == ["Ann_One_0001.jpg", "Bob_Two_0001.jpg",
                                                               "Bob_Two_0002.jpg"]
    assert sorted(p.reason for p in reader.problems) == ["image in both gender lists"]


def test_missing_sources_and_lists_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="holds none of"):
        FaceUnionReader(tmp_path / "empty")
    (tmp_path / "lfw").mkdir()
    with pytest.raises(Exception, match="male_names.txt does not exist"):
        LfwGenderReader(tmp_path / "lfw")


def test_mean_fallback_aligns_faces_the_detector_misses(tmp_path):
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"{i}.png"))
        face_image(paths[-1], size=(120 + 10 * i, 120 + 10 * i), tight=True)
    paths.append(str(tmp_path / "noise.png"))
    face_image(paths[-1], noise=True)
    crops, found = aligned_crops(paths, TRUNK_SPEC, str(tmp_path / "c1"), progress=False)
    assert found.tolist() == [True, True, True, False] and crops[3].max() == 0
    crops, found = aligned_crops(paths, TRUNK_SPEC, str(tmp_path / "c2"), progress=False, fallback="mean")
    assert found.tolist() == [True, True, True, False] and crops[3].std() > 20
    with pytest.raises(Exception, match="fallback must be one of"):
        aligned_crops(paths, TRUNK_SPEC, str(tmp_path / "c3"), fallback="guess")
