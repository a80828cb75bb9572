"""A tiny data root of every source ``facezoo.data.face_union`` reads, each image the bundled portrait (a real
face the detector finds), for the union reader's and ``dmtl_face``'s recipe tests."""
import os

import numpy as np
from PIL import Image

from facezoo.attributes import CELEBA_NAMES
from facezoo.zoo import sample_image, sample_photo

PORTRAIT = Image.open(sample_photo()).convert("RGB")


def face_image(path, size=None, grey=False, noise=False, tight=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if tight:  # a face crop as FER-2013 stores them
        image = Image.open(sample_image()).convert("RGB").crop((14, 40, 164, 190)).resize(size)
    elif noise:
        image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200, 3), np.uint8))
    else:
        image = PORTRAIT.resize(size) if size else PORTRAIT
    (image.convert("L") if grey else image).save(path)


def union_layout(root):
    """A data root with every source, each image the bundled portrait (a real face the detector finds)."""
    crop = Image.open(sample_image()).convert("RGB")
    celeba = root / "celeba"
    names = [f"{i:06d}.jpg" for i in range(1, 9)]
    for name in names:
        os.makedirs(celeba / "img_align_celeba", exist_ok=True)
        crop.save(celeba / "img_align_celeba" / name)
    rows = [f"{n} " + " ".join("1" if j == 20 else "-1" for j in range(40)) for n in names]  # Male (index 20) = 1
    (celeba / "list_attr_celeba.txt").write_text("\n".join([str(len(names)), " ".join(CELEBA_NAMES)] + rows) + "\n")
    (celeba / "list_eval_partition.txt").write_text("".join(f"{n} 0\n" for n in names))
    (celeba / "identity_CelebA.txt").write_text("".join(f"{n} {i}\n" for i, n in enumerate(names)))
    for name in ("30_0_0_20170101000000001.jpg", "61_1_2_20170101000000002.jpg"):
        face_image(root / "utkface" / "UTKFace" / name, size=(200, 200))
    lfw = root / "lfw"
    people = {"Ann_One": 1, "Bob_Two": 0, "Cid_Three": 0}
    for person in people:
        face_image(lfw / "lfw-deepfunneled" / person / f"{person}_0001.jpg", size=(250, 250))
    face_image(lfw / "lfw-deepfunneled" / "Bob_Two" / "Bob_Two_0002.jpg", noise=True)  # no face in it
    (lfw / "pairs.txt").write_text("1\t1\nAnn_One\t1\t1\nAnn_One\t1\tCid_Three\t1\n")
    (lfw / "male_names.txt").write_text("Bob_Two_0001.jpg\nBob_Two_0002.jpg\nCid_Three_0001.jpg\n")
    (lfw / "female_names.txt").write_text("Ann_One_0001.jpg\n")
    fer = root / "fer2013"
    face_image(fer / "train" / "happy" / "Training_1.jpg", size=(48, 48), grey=True, tight=True)
    face_image(fer / "test" / "sad" / "PublicTest_2.jpg", size=(48, 48), grey=True, tight=True)
    return root
