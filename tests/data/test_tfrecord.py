"""TFRecord converter: contents, resumability, determinism, rejects, resizing, parity with load_image."""
import csv
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from facezoo.attributes import CELEBA_40
from facezoo.data.celeba import CelebaReader
from facezoo.data.records import DataFormatError, FaceRecord
from facezoo.data.tfrecord import MANIFEST, REJECTS, convert, decode_stored_image, read_manifest, shard_name
from facezoo.images import load_image
from tests import corpus


def _examples(path):
    return [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]


def _files(directory):
    return {f: open(os.path.join(directory, f), "rb").read() for f in sorted(os.listdir(directory))}


def test_contents_and_manifest(celeba_layout, tmp_path):
    root, names, values = celeba_layout(n=8, partitions=(0,))
    records = list(CelebaReader(root).records())
    manifest = convert(records, CELEBA_40, tmp_path / "out", shards=3, progress=False)
    assert manifest == {k: v for k, v in read_manifest(tmp_path / "out").items() if k != "directory"}
    shards = manifest["splits"]["train"]["shards"]
    assert [s["file"] for s in shards] == [shard_name("train", k, 3) for k in range(3)]
    assert [s["records"] for s in shards] == [3, 3, 2] and manifest["splits"]["train"]["count"] == 8
    assert manifest["landmarks"] is True and manifest["rejects"] == 0 and manifest["image_size"] is None
    ex = _examples(tmp_path / "out" / shards[1]["file"])[0].features.feature  # record 1 -> shard 1
    assert ex["image/encoded"].bytes_list.value[0] == open(records[1].image, "rb").read()
    assert ex["image/height"].int64_list.value[0] == 22 and ex["image/width"].int64_list.value[0] == 18
    assert ex["source"].bytes_list.value[0] == records[1].source.encode()
    assert ex["identity"].bytes_list.value[0] == b"100"
    assert [ex[f"label/{n}"].int64_list.value[0] for n in CELEBA_40.names] == [int(v == 1) for v in values[1]]
    assert all(ex[f"mask/{n}"].float_list.value[0] == 1.0 for n in CELEBA_40.names)
    assert list(ex["landmarks"].float_list.value) == [5, 8, 12, 8, 9, 12, 6, 16, 12, 16]


def test_killed_then_resumed_is_byte_identical(celeba_layout, tmp_path):
    root, _, _ = celeba_layout(n=8, partitions=(0, 0, 1))
    records = list(CelebaReader(root).records())
    convert(records, CELEBA_40, tmp_path / "whole", shards=3, progress=False)

    def die_after_two(path, written=[]):
        written.append(path)
        if len(written) == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        convert(records, CELEBA_40, tmp_path / "resumed", shards=3, progress=False, on_shard_written=die_after_two)
    assert not os.path.exists(tmp_path / "resumed" / MANIFEST)
    # A shard caught mid-write: stray temp files of dead processes (this version's naming and the
    # older one), and a final name without its .done file.
    (tmp_path / "resumed" / (shard_name("train", 2, 3) + ".4194305-1.partial")).write_bytes(b"garbage")
    (tmp_path / "resumed" / (shard_name("train", 2, 3) + ".partial")).write_bytes(b"garbage")
    (tmp_path / "resumed" / shard_name("val", 0, 2)).write_bytes(b"half a shard")  # 2 val records
    rewritten = []
    convert(records, CELEBA_40, tmp_path / "resumed", shards=3, progress=False, on_shard_written=rewritten.append)
    assert [os.path.basename(p) for p in rewritten] == [shard_name("train", 2, 3)] + [
        shard_name("val", k, 2) for k in range(2)]
    assert _files(tmp_path / "resumed") == _files(tmp_path / "whole")


def test_concurrent_conversions_into_one_folder_do_not_collide(celeba_layout, tmp_path):
    import threading
    root, _, _ = celeba_layout(n=12, partitions=(0, 0, 1))
    records = list(CelebaReader(root).records())
    convert(records, CELEBA_40, tmp_path / "alone", shards=2, progress=False)
    results, errors = [], []

    def run():
        try:
            results.append(convert(records, CELEBA_40, tmp_path / "shared", shards=2, progress=False))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 3 and results[0] == results[1] == results[2]
    assert _files(tmp_path / "shared") == _files(tmp_path / "alone")  # no temp file left behind
    read_manifest(tmp_path / "shared", verify=True)


def test_changed_input_rewrites_shard(celeba_layout, tmp_path, write_jpeg):
    root, _, _ = celeba_layout(n=4, partitions=(0,))
    convert(CelebaReader(root).records(), CELEBA_40, tmp_path / "out", shards=2, progress=False)
    write_jpeg(root / "img_align_celeba" / "000002.jpg", size=(30, 30), seed=99)
    rewritten = []
    manifest = convert(CelebaReader(root).records(), CELEBA_40, tmp_path / "out", shards=2, progress=False,
                       on_shard_written=rewritten.append)
    assert [os.path.basename(p) for p in rewritten] == [shard_name("train", 1, 2)]
    read_manifest(tmp_path / "out", verify=True)
    assert manifest["splits"]["train"]["count"] == 4


def _bad_files(folder, write_jpeg):
    write_jpeg(folder / "good.jpg")
    (folder / "empty.jpg").write_bytes(b"")
    full = write_jpeg(folder / "full.jpg", size=(64, 64)).read_bytes()
    (folder / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (folder / "text.jpg").write_text("not an image")
    write_jpeg(folder / "tiny.jpg", size=(4, 30))
    return {"empty.jpg": "file is empty", "truncated.jpg": "truncated or corrupt", "text.jpg": "not an image",
            "tiny.jpg": "image 4x30 is smaller than 8 pixels"}


def test_rejects(tmp_path, write_jpeg):
    expected = _bad_files(tmp_path / "img", write_jpeg)
    names = ["good.jpg", *expected, "missing.jpg"]
    records = [FaceRecord(str(tmp_path / "img" / n), {"Male": 1}, source=n) for n in names]
    manifest = convert(records, CELEBA_40, tmp_path / "out", shards=2, max_reject_fraction=0.9, progress=False)
    assert manifest["rejects"] == 5 and manifest["splits"]["train"]["count"] == 1
    with open(tmp_path / "out" / REJECTS) as f:
        rows = list(csv.DictReader(f))
    reasons = {r["source"]: r["reason"] for r in rows}
    assert set(reasons) == set(expected) | {"missing.jpg"}
    for name, reason in expected.items():
        assert reason in reasons[name]
    with pytest.raises(DataFormatError, match=r"\d of 6 images could not be decoded.*max_reject_fraction=0.05"):
        convert(records, CELEBA_40, tmp_path / "strict", shards=2, progress=False)
    assert (tmp_path / "strict" / REJECTS).exists()


def test_resize_moves_landmarks(tmp_path, write_jpeg):
    write_jpeg(tmp_path / "a.jpg", size=(40, 20))
    lm = np.array([[10, 5], [30, 5], [20, 10], [12, 15], [28, 15]], np.float32)
    record = FaceRecord(str(tmp_path / "a.jpg"), {"Male": 0}, landmarks=lm, source="a.jpg")
    manifest = convert([record], CELEBA_40, tmp_path / "out", shards=1, image_size=(10, 10), progress=False)
    assert manifest["image_size"] == [10, 10]
    ex = _examples(tmp_path / "out" / manifest["splits"]["train"]["shards"][0]["file"])[0].features.feature
    image = tf.io.decode_jpeg(ex["image/encoded"].bytes_list.value[0])
    assert image.shape == (10, 10, 3)
    assert ex["mask/Male"].float_list.value[0] == 1.0 and ex["mask/Young"].float_list.value[0] == 0.0
    # Centre crop 20x20 from x=10, then scale 0.5 with half-pixel centres.
    moved = np.array(ex["landmarks"].float_list.value).reshape(5, 2)
    np.testing.assert_allclose(moved, (lm - [10, 0] + 0.5) * 0.5 - 0.5)


def test_bad_labels_and_manifest(tmp_path, write_jpeg):
    write_jpeg(tmp_path / "a.jpg")
    with pytest.raises(DataFormatError, match="label 'Male' must be an int in 0..1, got 2"):
        convert([FaceRecord(str(tmp_path / "a.jpg"), {"Male": 2}, source="a.jpg")], CELEBA_40, tmp_path / "o")
    with pytest.raises(ValueError, match="split names become file names"):
        convert([FaceRecord(str(tmp_path / "a.jpg"), {}, split="../x", source="a.jpg")], CELEBA_40, tmp_path / "o")
    with pytest.raises(FileNotFoundError, match="data convert"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(DataFormatError, match="schema_version 99"):
        read_manifest(tmp_path)


def _mixed_folder(folder):
    """One image of each kind the converter treats differently (see ``facezoo.data.tfrecord``)."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = corpus.pattern(24, 16)
    rgba = np.dstack([rgb, np.full((16, 24), 255, np.uint8)])
    rgba[:, :4, 3] = 0
    files = {"plain.jpg": corpus.encode(rgb, "JPEG"), "plain.png": corpus.encode(rgb, "PNG"),
             "grey.png": corpus.encode(rgb[..., 0], "PNG"), "alpha.png": corpus.encode(rgba, "PNG"),
             "turned.jpg": corpus.with_orientation(rgb, 6, "JPEG"), "deep.png": corpus.encode(
                 np.full((16, 24), 40000, np.uint16), "PNG"), "anim.gif": corpus.animated_gif(),
             "cmyk.jpg": corpus.encode(Image.fromarray(rgb).convert("CMYK"), "JPEG"), "text.jpg": b"not an image"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [FaceRecord(str(folder / n), {"Male": i % 2}, source=n) for i, n in enumerate(files)]


def test_two_conversions_are_byte_identical(tmp_path):
    records = _mixed_folder(tmp_path / "img")
    for image_size in (None, (12, 12)):
        first, second = tmp_path / f"a{image_size}", tmp_path / f"b{image_size}"
        convert(records, CELEBA_40, first, shards=2, image_size=image_size, max_reject_fraction=0.5, progress=False)
        convert(records, CELEBA_40, second, shards=2, image_size=image_size, max_reject_fraction=0.5,
                progress=False)
        assert _files(first) == _files(second) and len(_files(first)) == 6  # 2 shards, 2 .done, manifest, rejects


def test_stored_pixels_are_what_load_image_reads(tmp_path):
    """The original bytes are kept exactly where the pipeline's decoder gives load_image's pixels."""
    records = _mixed_folder(tmp_path / "img")
    manifest = convert(records, CELEBA_40, tmp_path / "out", shards=1, max_reject_fraction=0.5, progress=False)
    stored = {ex.features.feature["source"].bytes_list.value[0].decode(): ex.features.feature for ex in
              _examples(tmp_path / "out" / manifest["splits"]["train"]["shards"][0]["file"])}
    kept = {s for s, f in stored.items()
            if f["image/encoded"].bytes_list.value[0] == (tmp_path / "img" / s).read_bytes()}
    assert {"plain.jpg", "plain.png", "grey.png"} <= kept and not kept & {"alpha.png", "turned.jpg", "anim.gif"}
    for source, feature in stored.items():
        pixels = decode_stored_image(feature["image/encoded"].bytes_list.value[0]).numpy()
        expected = load_image(tmp_path / "img" / source)
        assert pixels.shape == expected.shape, source
        assert (feature["image/height"].int64_list.value[0], feature["image/width"].int64_list.value[0]) == \
            expected.shape[:2]
        if source in kept:
            np.testing.assert_array_equal(pixels, expected)
        else:
            assert feature["image/encoded"].bytes_list.value[0] == tf.io.encode_jpeg(expected, quality=95).numpy()
    assert manifest["rejects"] == 1


def test_rejects_are_reported_one_by_one(tmp_path, write_jpeg):
    expected = _bad_files(tmp_path / "img", write_jpeg)
    records = [FaceRecord(str(tmp_path / "img" / n), {"Male": 1}, source=n) for n in ["good.jpg", *expected]]
    seen = []
    convert(records, CELEBA_40, tmp_path / "out", shards=2, max_reject_fraction=0.9, progress=False,
            on_reject=lambda source, reason: seen.append((source, reason)))
    assert sorted(s for s, _ in seen) == sorted(expected)
    for source, reason in seen:
        assert reason.startswith(str(tmp_path / "img" / source) + ": ") and expected[source] in reason
    again = []
    convert(records, CELEBA_40, tmp_path / "out", shards=2, max_reject_fraction=0.9, progress=False,
            on_reject=lambda source, reason: again.append((source, reason)))
    assert sorted(again) == sorted(seen)  # a resumed run reports the rejects of the shards it keeps


def test_landmarks_follow_a_shrunk_image(tmp_path):
    (tmp_path / "wide.png").write_bytes(corpus.encode(np.zeros((16, 4100, 3), np.uint8), "PNG"))
    lm = np.array([[1000, 4], [1100, 4], [1050, 8], [1010, 12], [1090, 12]], np.float32)
    record = FaceRecord(str(tmp_path / "wide.png"), {"Male": 0}, landmarks=lm, source="wide.png")
    manifest = convert([record], CELEBA_40, tmp_path / "out", shards=1, progress=False)
    ex = _examples(tmp_path / "out" / manifest["splits"]["train"]["shards"][0]["file"])[0].features.feature
    assert (ex["image/height"].int64_list.value[0], ex["image/width"].int64_list.value[0]) == (8, 2050)
    np.testing.assert_allclose(np.array(ex["landmarks"].float_list.value).reshape(5, 2), (lm + 0.5) * 0.5 - 0.5)
