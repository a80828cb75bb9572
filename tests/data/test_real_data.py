"""The staged CelebA subset passes the reader's checks and converts (skips when absent)."""
import os
import pathlib

import pytest

from facezoo.attributes import CELEBA_40
from facezoo.data.celeba import CelebaReader
from facezoo.data.pipeline import pipeline
from facezoo.data.tfrecord import convert

DATA = pathlib.Path(os.environ.get("FACEZOO_DATA",
                                   pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data"))


@pytest.mark.real_data
def test_shared_celeba(tmp_path):
    root = DATA / "celeba"
    if not (root / "list_attr_celeba.txt").exists():
        pytest.skip(f"real data set {root} is absent")
    records = list(CelebaReader(root).records())
    assert len(records) == 8063 and records[0].source == "img_align_celeba/000001.jpg"
    assert all(r.identity for r in records[:100]) and {r.split for r in records} == {"train"}
    convert(records[:40], CELEBA_40, tmp_path, shards=2, progress=False)
    images, labels, masks = next(iter(pipeline(tmp_path, "train", image_size=(112, 112), batch_size=40,
                                               training=False)))
    assert images.shape == (40, 112, 112, 3)
    assert labels["Male"].numpy().tolist() == [r.labels["Male"] for r in records[:40]]
