"""Reader -> convert -> pipeline keeps labels and masks; from_records matches; augmentation runs; bad input is named."""
import re

import numpy as np
import pytest
import tensorflow as tf

from facezoo.attributes import CELEBA_40, UTKFACE
from facezoo.data.augment import DEFAULT_AUGMENT
from facezoo.data.celeba import CelebaReader
from facezoo.data.pipeline import from_records, named_input_errors, pipeline
from facezoo.data.records import DataFormatError, FaceRecord
from facezoo.data.tfrecord import convert
from facezoo.images import ImageError, load_image
from facezoo.preprocessing import fit_to_input, preprocess_input
from tests import corpus


def _collect(ds):
    images, labels, masks = [], {}, {}
    for x, y, m in ds:
        images.append(x.numpy())
        for k in y:
            labels.setdefault(k, []).extend(y[k].numpy().tolist())
            masks.setdefault(k, []).extend(m[k].numpy().tolist())
    return np.concatenate(images), labels, masks


def test_celeba_roundtrip_matches_reader(celeba_layout, tmp_path):
    root, _, _ = celeba_layout(n=7, partitions=(0,))
    records = list(CelebaReader(root).records())
    convert(records, CELEBA_40, tmp_path / "out", shards=3, progress=False)
    kwargs = dict(image_size=(16, 16), batch_size=3, training=False, deterministic=True)
    ds = pipeline(tmp_path / "out", "train", **kwargs)
    x, y, m = next(iter(ds))
    assert x.dtype == tf.float32 and x.shape == (3, 16, 16, 3)
    assert y["Male"].dtype == tf.float32 and m["Male"].dtype == tf.float32
    images, labels, masks = _collect(ds)
    assert images.shape == (7, 16, 16, 3) and -1.0 <= images.min() and images.max() <= 1.0
    for name in CELEBA_40.names:  # round-robin shards read round-robin: reader order comes back
        assert labels[name] == [r.labels[name] for r in records]
        assert masks[name] == [1.0] * 7
    direct = _collect(from_records(records, CELEBA_40, **kwargs))
    np.testing.assert_array_equal(direct[0], images)
    assert direct[1] == labels and direct[2] == masks


def test_masks_dtypes_grayscale_and_label_keys(tmp_path, write_jpeg):
    write_jpeg(tmp_path / "a.jpg", size=(20, 24), mode="L")
    write_jpeg(tmp_path / "b.png", size=(24, 20), seed=1)
    records = [FaceRecord(str(tmp_path / "a.jpg"), {"age": 30, "gender": 1}, source="a.jpg"),
               FaceRecord(str(tmp_path / "b.png"), {"age": 7, "race": 3}, source="b.png")]
    convert(records, UTKFACE, tmp_path / "out", shards=1, progress=False)
    for ds in (pipeline(tmp_path / "out", "train", image_size=(8, 8), batch_size=2, training=False,
                        label_keys=["age", "race"]),
               from_records(records, UTKFACE, image_size=(8, 8), batch_size=2, label_keys=["age", "race"])):
        x, y, m = next(iter(ds))
        assert x.shape == (2, 8, 8, 3)
        assert set(y) == {"age", "race"} and y["age"].dtype == tf.int32
        assert y["age"].numpy().tolist() == [30, 7] and y["race"].numpy().tolist() == [0, 3]
        assert m["race"].numpy().tolist() == [0.0, 1.0] and m["age"].numpy().tolist() == [1.0, 1.0]
        gray = x.numpy()[0]
        np.testing.assert_array_equal(gray[..., 0], gray[..., 1])
    with pytest.raises(ValueError, match="not in label space"):
        from_records(records, UTKFACE, image_size=(8, 8), batch_size=2, label_keys=["Male"])
    with pytest.raises(ValueError, match="split 'val' is not in"):
        pipeline(tmp_path / "out", "val", image_size=(8, 8), batch_size=2, training=False)


def test_training_is_seeded_and_augmented(celeba_layout, tmp_path):
    root, _, _ = celeba_layout(n=6, partitions=(0,))
    records = list(CelebaReader(root).records())
    convert(records, CELEBA_40, tmp_path / "out", shards=2, progress=False)

    def build(seed):
        return pipeline(tmp_path / "out", "train", image_size=(16, 16), batch_size=4, training=True,
                        augment=DEFAULT_AUGMENT, seed=seed, deterministic=True, cache=str(tmp_path / "cache"))

    ds = build(3)
    epochs = [[b[0].numpy() for b in ds] for _ in range(2)]
    assert len(epochs[0]) == 1 and epochs[0][0].shape == (4, 16, 16, 3)  # drop_remainder when training
    assert not np.array_equal(epochs[0][0], epochs[1][0])  # reshuffled and re-augmented every epoch
    np.testing.assert_array_equal(epochs[0][0], next(iter(build(3)))[0].numpy())
    plain = _collect(pipeline(tmp_path / "out", "train", image_size=(16, 16), batch_size=6, training=False))[0]
    assert not any(np.array_equal(img, p) for img in epochs[0][0] for p in plain)


def test_distribution_options(celeba_layout, tmp_path):
    root, _, _ = celeba_layout(n=4, partitions=(0,))
    convert(CelebaReader(root).records(), CELEBA_40, tmp_path / "out", shards=1, progress=False)
    ds = pipeline(tmp_path / "out", "train", image_size=(8, 8), batch_size=2, training=True)
    assert ds.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    batches = list(strategy.experimental_distribute_dataset(ds))
    assert len(batches) == 2


def test_from_records_reads_images_as_predict_does(tmp_path):
    """EXIF orientation and alpha are applied as load_image applies them, before fit_to_input."""
    upright = corpus.pattern(24, 16)
    (tmp_path / "turned.png").write_bytes(corpus.with_orientation(upright, 6))
    (tmp_path / "plain.png").write_bytes(corpus.encode(upright, "PNG"))
    records = [FaceRecord(str(tmp_path / n), {"Male": 1}, source=n) for n in ("turned.png", "plain.png")]
    x = next(iter(from_records(records, CELEBA_40, image_size=(8, 8), batch_size=2)))[0].numpy()
    expected = preprocess_input(tf.cast(tf.round(fit_to_input(upright, (8, 8))), tf.uint8)).numpy()
    np.testing.assert_array_equal(x[0], expected)
    np.testing.assert_array_equal(x[1], expected)


def test_a_corrupt_image_is_named(tmp_path, write_jpeg):
    write_jpeg(tmp_path / "good.jpg", size=(16, 16))
    full = write_jpeg(tmp_path / "full.jpg", size=(64, 64)).read_bytes()
    (tmp_path / "bad.jpg").write_bytes(full[: len(full) // 2])
    records = [FaceRecord(str(tmp_path / n), {"Male": 1}, source=n) for n in ("good.jpg", "bad.jpg")]
    ds = from_records(records, CELEBA_40, image_size=(8, 8), batch_size=1, cache=False)
    with pytest.raises(tf.errors.OpError, match="bad.jpg: image data is truncated"):
        list(ds)
    with pytest.raises(ImageError, match=f"^{re.escape(str(tmp_path / 'bad.jpg'))}: image data is truncated"), \
            named_input_errors(records):
        list(ds)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_shard_is_named(celeba_layout, tmp_path, damage):
    root, _, _ = celeba_layout(n=4, partitions=(0,))
    manifest = convert(CelebaReader(root).records(), CELEBA_40, tmp_path / "out", shards=2, progress=False)
    ds = pipeline(tmp_path / "out", "train", image_size=(8, 8), batch_size=2, training=False, cache=False)
    with named_input_errors(tmp_path / "out", "train"):  # nothing happens when nothing goes wrong
        assert len(list(ds)) == 2
    shard = tmp_path / "out" / manifest["splits"]["train"]["shards"][1]["file"]
    data = bytearray(shard.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[-10:]
    shard.write_bytes(bytes(data))
    with pytest.raises(tf.errors.DataLossError):
        list(ds)
    named = (f"^{re.escape(str(shard))}: TFRecord shard is damaged "
             r"\((corrupted|truncated) record at \d+[^)]*\): its sha256 no longer matches")
    with pytest.raises(DataFormatError, match=named), named_input_errors(tmp_path / "out", "train"):
        list(ds)


def test_training_sees_the_pixels_predict_sees_for_jpeg(tmp_path, write_jpeg):
    """Stored JPEG bytes decode, in the pipeline, to exactly load_image's pixels (TF's fast DCT would differ)."""
    records = [FaceRecord(str(write_jpeg(tmp_path / f"{i}.jpg", size=(30, 26), seed=i)), {"Male": 1}, source=f"{i}")
               for i in range(2)]
    convert(records, CELEBA_40, tmp_path / "out", shards=1, progress=False)
    x = next(iter(pipeline(tmp_path / "out", "train", image_size=(16, 16), batch_size=2, training=False)))[0]
    for image, record in zip(x.numpy(), records):
        pixels = tf.cast(tf.round(fit_to_input(load_image(record.image), (16, 16))), tf.uint8)
        np.testing.assert_array_equal(image, preprocess_input(pixels).numpy())
