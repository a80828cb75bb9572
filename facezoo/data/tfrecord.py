"""Converts ``FaceRecord``s into sharded, schema-versioned TFRecord files, atomically and resumably.

Output directory::

    manifest.json                         schema version, label space, image size, splits, shards
    rejects.csv                           source,reason for every image that failed to decode
    train-00000-of-00004.tfrecord         one tf.train.Example per image (written by ``_example``)
    train-00000-of-00004.tfrecord.done    checksum and input fingerprint of the finished shard

Every image is read by ``facezoo.images.load_image``, as ``FaceModel.predict`` reads it. Each example holds
``image/encoded``: the original bytes when they are JPEG or PNG that ``decode_stored_image`` (the pipeline's
decoder) turns into exactly ``load_image``'s pixels; otherwise (other formats and modes, EXIF rotation,
transparency, images shrunk to ``WORKING_SIDE``) those pixels as JPEG quality 95, after ``fit_to_input`` when
``image_size`` is given or after 5-point alignment with ``align``. Beside it ``image/format``, ``image/height``,
``image/width``, per attribute ``label/<name>`` (int64; 0 where unknown) and ``mask/<name>``
(float; 1 known, 0 unknown), ``landmarks`` (10 floats x1 y1 ... x5 y5, only where known; given in the upright,
full-size picture and scaled with it), ``identity`` and ``source``.

Record ``i`` of a split goes to shard ``i % n``: round-robin, so a reader's ordering (UTKFace names
sort by age) never puts one age range in one shard, and the assignment depends on nothing but the
input order. Nothing time-dependent is written and examples are serialised deterministically (map
fields in key order), so two conversions of the same input, or a run that was killed and resumed, produce
the same bytes.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from typing import Callable, Iterable, Mapping

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from facezoo.attributes import LabelSpace
from facezoo.face.align import align_face, fit_landmarks
from facezoo.data.records import DataFormatError, FaceRecord, Problem, problems_csv
from facezoo.files import sha256_of
from facezoo.images import ImageError, load_image, read_image_file, upright_size
from facezoo.preprocessing import fit_to_input
from facezoo.errors import MissingDataError, UsageError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
REJECTS = "rejects.csv"
JPEG_QUALITY = 95
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def shard_name(split: str, index: int, count: int) -> str:
    """File name of shard ``index`` of ``count`` for ``split``: ``train-00000-of-00004.tfrecord``."""
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def decode_stored_image(encoded):
    """The uint8 (h, w, 3) pixels of a stored ``image/encoded`` (JPEG or PNG bytes), as ``load_image`` sees them.

    JPEG is decoded with libjpeg's accurate integer DCT, as PIL decodes it; TensorFlow's default fast DCT gives
    pixels up to 6 grey levels away, so training would see other pixels than ``predict``.
    """
    image = tf.cond(tf.io.is_jpeg(encoded),
                    lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
                    lambda: tf.io.decode_png(encoded, channels=3))
    image.set_shape([None, None, 3])
    return image


def _partial(path: str) -> str:
    """A temporary name for ``path`` private to this process and thread: conversions running at once
    into one folder never write into each other's files (each renames its own complete copy)."""
    return f"{path}.{os.getpid()}-{threading.get_ident()}.partial"


def _remove_stale_partials(out_dir: str):
    """Deletes temporary files left by conversions that were killed (their process is gone)."""
    for name in os.listdir(out_dir):
        if not name.endswith(".partial"):
            continue
        m = re.search(r"\.(\d+)-\d+\.partial$", name)
        if m:
            try:
                os.kill(int(m.group(1)), 0)
                continue  # a live conversion's file
            except (ProcessLookupError, OverflowError):
                pass  # no such process
            except PermissionError:
                continue  # alive, another user's
        try:
            os.remove(os.path.join(out_dir, name))
        except FileNotFoundError:
            pass


def _write_atomic(path: str, text: str):
    tmp = _partial(path)
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, path)


def _check_labels(records: list[FaceRecord], label_space: LabelSpace):
    """Raises ``DataFormatError`` for a label the label space does not define."""
    for r in records:
        for name, value in r.labels.items():
            if name not in label_space.names:
                raise DataFormatError(f"{r.source or r.image}: label {name!r} is not in label space "
                                      f"{label_space.name!r} ({label_space.names})")
            n = label_space[name].num_classes
            if not (isinstance(value, (int, np.integer)) and 0 <= value < n):
                raise DataFormatError(f"{r.source or r.image}: label {name!r} must be an int in 0..{n - 1}, "
                                      f"got {value!r}")


def _stored_format(data: bytes, pixels: np.ndarray) -> str | None:
    """``"jpeg"`` or ``"png"`` when ``decode_stored_image`` turns ``data`` into exactly ``pixels``, else None."""
    fmt = "jpeg" if data[:3] == b"\xff\xd8\xff" else "png" if data[:8] == _PNG_SIGNATURE else None
    if fmt is None:
        return None
    try:
        decoded = decode_stored_image(tf.constant(data)).numpy()
    except tf.errors.OpError:
        return None
    return fmt if decoded.shape == pixels.shape and np.array_equal(decoded, pixels) else None


class _Encoder:
    """Reads one image file with ``load_image`` and returns what to store; raises ``ImageError``.

    Three modes: keep the original bytes where the pipeline decodes them to ``load_image``'s pixels
    (``image_size`` None; otherwise those pixels are stored as JPEG), ``fit_to_input`` to ``image_size``, or
    ``align`` the face to the 5-point template at ``image_size``. Landmarks are moved with the pixels.
    """

    def __init__(self, image_size, align: bool = False):
        self.image_size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
        size = self.image_size

        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
        def encode(pixels):
            if size is not None:
                pixels = tf.cast(tf.round(fit_to_input(pixels, size)), tf.uint8)
            return tf.io.encode_jpeg(pixels, quality=JPEG_QUALITY)

        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([5, 2], tf.float32)])
        def encode_aligned(pixels, landmarks):
            aligned, moved = align_face(pixels, landmarks, size)
            return tf.io.encode_jpeg(tf.cast(tf.round(aligned), tf.uint8), quality=JPEG_QUALITY), moved

        self._encode = encode
        self._encode_aligned = encode_aligned if align else None

    def __call__(self, path: str, landmarks=None) -> tuple[bytes, str, int, int, np.ndarray | None]:
        """Returns ``(encoded, format, height, width, landmarks)`` as they will be stored."""
        data = read_image_file(path)
        pixels = load_image(data, name=path)
        h, w = pixels.shape[:2]
        if landmarks is not None:
            full_w, full_h = upright_size(data, name=path)
            if (full_w, full_h) != (w, h):  # shrunk to the working size: landmarks follow (half-pixel centres)
                points = np.asarray(landmarks, np.float32)
                landmarks = (points + 0.5) * np.array([w / full_w, h / full_h], np.float32) - 0.5
        if self._encode_aligned is not None:
            encoded, moved = self._encode_aligned(tf.constant(pixels), tf.constant(landmarks, tf.float32))
            return encoded.numpy(), "jpeg", self.image_size[0], self.image_size[1], moved.numpy()
        if self.image_size is None:
            fmt = _stored_format(data, pixels)
            if fmt is not None:
                return data, fmt, h, w, landmarks
            return self._encode(tf.constant(pixels)).numpy(), "jpeg", h, w, landmarks
        if landmarks is not None:
            landmarks = fit_landmarks(landmarks, (h, w), self.image_size)
        return self._encode(tf.constant(pixels)).numpy(), "jpeg", self.image_size[0], self.image_size[1], landmarks


def _example(record: FaceRecord, label_space: LabelSpace, encoded: bytes, fmt: str, h: int, w: int,
             landmarks) -> bytes:
    def ints(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=v))

    def floats(v):
        return tf.train.Feature(float_list=tf.train.FloatList(value=v))

    def strings(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=v))

    feature = {
        "image/encoded": strings([encoded]),
        "image/format": strings([fmt.encode()]),
        "image/height": ints([h]),
        "image/width": ints([w]),
        "identity": strings([(record.identity or "").encode()]),
        "source": strings([record.source.encode()]),
    }
    for a in label_space:
        known = a.name in record.labels
        feature[f"label/{a.name}"] = ints([int(record.labels[a.name]) if known else 0])
        feature[f"mask/{a.name}"] = floats([1.0 if known else 0.0])
    if landmarks is not None:
        feature["landmarks"] = floats(np.asarray(landmarks, np.float32).reshape(10).tolist())
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def _fingerprint(entries: list[FaceRecord], label_space: LabelSpace, image_size, align: bool) -> str:
    """Hash of everything a shard's bytes depend on, so a resumed run never reuses a stale shard."""
    items = []
    for r in entries:
        try:
            st = os.stat(r.image)
            stat = [st.st_size, st.st_mtime_ns]
        except OSError:
            stat = None
        items.append([r.image, r.source, stat, sorted(r.labels.items()), r.identity,
                      None if r.landmarks is None else np.asarray(r.landmarks, np.float32).ravel().tolist()])
    blob = json.dumps([SCHEMA_VERSION, label_space.to_dict(), image_size, align, items], default=int)
    return hashlib.sha256(blob.encode()).hexdigest()


def _finished_shard(path: str, fingerprint: str) -> dict | None:
    """The ``.done`` record of a complete, unchanged shard, or None if it must be (re)written."""
    try:
        with open(path + ".done", encoding="utf-8") as f:
            done = json.load(f)
    except (OSError, ValueError):
        return None
    if done.get("fingerprint") != fingerprint or not os.path.exists(path) or sha256_of(path) != done.get("sha256"):
        return None
    return done


def _shard_counts(shards, splits: Mapping[str, list]) -> dict[str, int]:
    out = {}
    for split, items in splits.items():
        n = shards.get(split, 1) if isinstance(shards, Mapping) else shards
        if not isinstance(n, int) or n < 1:
            raise UsageError(f"shards for split {split!r} must be a positive int, got {n!r}")
        out[split] = min(n, len(items))
    return out


def _write_rejects(out_dir: str, rejects: list[list[str]]):
    _write_atomic(os.path.join(out_dir, REJECTS), problems_csv(Problem(*r) for r in rejects))


def convert(records: Iterable[FaceRecord], label_space: LabelSpace, out_dir, *, shards=8,
            image_size=None, align: bool = False, max_reject_fraction: float = 0.05, progress: bool = True,
            on_shard_written: Callable[[str], None] | None = None,
            on_reject: Callable[[str, str], None] | None = None) -> dict:
    """Writes records as sharded TFRecords plus ``manifest.json`` and ``rejects.csv``.

    Re-running with the same inputs skips every shard whose ``.done`` file matches its checksum
    and input fingerprint, so an interrupted conversion resumes where it stopped and ends
    byte-identical to an uninterrupted one.

    Args:
        records: the reader's records (each with a ``split``).
        label_space: the attributes to store; every record label must belong to it.
        out_dir: output folder (created if needed).
        shards: shards per split (int, or a mapping split -> int, 1 for splits it does not name);
            capped at the split's size. Shards of an earlier run with other counts are left in
            place but are not in the manifest, which is what readers follow.
        image_size: None to keep the original encoded bytes, or ``(height, width)`` to store
            ``fit_to_input`` output re-encoded as JPEG quality 95 (landmarks are moved to match).
        align: warp each face so its landmarks match ``facezoo.face.align.FACE_TEMPLATE`` at
            ``image_size`` (required then; every record needs landmarks).
        max_reject_fraction: largest share of undecodable images tolerated before giving up.
        progress: show a tqdm progress bar.
        on_shard_written: called with each shard's path once it is complete (for logging; a
            callback that raises stops the conversion, leaving the finished shards resumable).
        on_reject: called as ``on_reject(source, reason)`` for every image ``load_image`` refuses, as it is
            found (those of shards kept from an earlier run too), e.g. to print it; ``reason`` names the file.
            All of them are also written to ``rejects.csv``.

    Returns:
        The manifest dict written to ``manifest.json``.

    Raises:
        DataFormatError: a label outside the label space, or too many rejected images (the
            rejects found so far are in ``rejects.csv``).
    """
    records = list(records)
    if not records:
        raise UsageError("convert: no records to write")
    _check_labels(records, label_space)
    if image_size is not None:
        image_size = [int(image_size[0]), int(image_size[1])]
    if align:
        if image_size is None:
            raise UsageError("convert: align=True needs image_size, the size of the aligned faces")
        missing = [r.source or r.image for r in records if r.landmarks is None]
        if len(missing) == len(records):
            raise UsageError("convert: cannot align, this data set has no landmarks")
        if missing:
            raise UsageError(f"convert: cannot align, {len(missing)} of {len(records)} records have no "
                             f"landmarks (first: {missing[0]})")
    out_dir = os.path.abspath(os.fspath(out_dir))
    os.makedirs(out_dir, exist_ok=True)
    _remove_stale_partials(out_dir)

    splits: dict[str, list[FaceRecord]] = {}
    for r in records:
        splits.setdefault(r.split, []).append(r)
    splits = dict(sorted(splits.items()))
    bad = [s for s in splits if not re.fullmatch(r"[A-Za-z0-9_.-]+", s)]
    if bad:
        raise UsageError(f"convert: split names become file names and may use only letters, digits, '_', '.', "
                         f"'-'; got {bad}")
    counts = _shard_counts(shards, splits)
    encoder = _Encoder(image_size, align)
    allowed = max_reject_fraction * len(records)
    rejects: list[list[str]] = []
    manifest_splits = {}
    bar = tqdm(total=len(records), desc=f"convert {label_space.name}", unit="img", disable=not progress)
    try:
        for split, items in splits.items():
            n = counts[split]
            shard_infos = []
            for k in range(n):
                entries = items[k::n]
                name = shard_name(split, k, n)
                path = os.path.join(out_dir, name)
                fingerprint = _fingerprint(entries, label_space, image_size, align)
                done = _finished_shard(path, fingerprint)
                if done is None:
                    done = _write_shard(path, entries, label_space, encoder, fingerprint, bar, on_reject)
                    if on_shard_written is not None:
                        on_shard_written(path)
                else:
                    bar.update(len(entries))
                    if on_reject is not None:
                        for source, reason in done["rejects"]:
                            on_reject(source, reason)
                rejects.extend(done["rejects"])
                if len(rejects) > allowed:
                    _write_rejects(out_dir, rejects)
                    raise DataFormatError(
                        f"convert: {len(rejects)} of {len(records)} images could not be decoded, more than "
                        f"max_reject_fraction={max_reject_fraction}; see {os.path.join(out_dir, REJECTS)} "
                        f"(first: {rejects[0][0]}: {rejects[0][1]})")
                shard_infos.append({"file": name, "records": done["records"], "sha256": done["sha256"]})
            manifest_splits[split] = {"count": sum(s["records"] for s in shard_infos), "shards": shard_infos}
    finally:
        bar.close()

    _write_rejects(out_dir, rejects)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "label_space": label_space.to_dict(),
        "image_size": image_size,
        "aligned": bool(align),
        "landmarks": any(r.landmarks is not None for r in records),
        "splits": manifest_splits,
        "rejects": len(rejects),
    }
    _write_atomic(os.path.join(out_dir, MANIFEST), json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _write_shard(path, entries, label_space, encoder, fingerprint, bar, on_reject) -> dict:
    """Writes one shard to a temporary name, renames it into place and records its ``.done``."""
    tmp = _partial(path)
    rejects, written = [], 0
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for r in entries:
                try:
                    encoded, fmt, h, w, landmarks = encoder(r.image, r.landmarks)
                except ImageError as e:
                    rejects.append([r.source or r.image, str(e)])
                    if on_reject is not None:
                        on_reject(*rejects[-1])
                else:
                    writer.write(_example(r, label_space, encoded, fmt, h, w, landmarks))
                    written += 1
                bar.update(1)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(tmp, path)
    done = {"fingerprint": fingerprint, "sha256": sha256_of(path), "records": written, "rejects": rejects}
    _write_atomic(path + ".done", json.dumps(done, indent=2, sort_keys=True) + "\n")
    return done


def read_manifest(directory, verify: bool = False) -> dict:
    """Loads ``manifest.json`` of a converted data set.

    Args:
        directory: the ``out_dir`` given to ``convert`` (or the manifest file itself).
        verify: also check every shard's sha256 (reads all shards once).

    Returns:
        The manifest dict, with ``"directory"`` set to the absolute folder holding the shards.

    Raises:
        FileNotFoundError: no manifest, or a shard it lists is missing.
        DataFormatError: an unsupported schema version or a checksum mismatch.
    """
    path = os.path.abspath(os.fspath(directory))
    if os.path.isdir(path):
        path = os.path.join(path, MANIFEST)
    if not os.path.exists(path):
        raise MissingDataError(f"{path} not found: run `facezoo data convert` to create it")
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise DataFormatError(f"{path}: schema_version {version!r} is not supported (expected {SCHEMA_VERSION}); "
                              "re-run the conversion with this facezoo version")
    manifest["directory"] = os.path.dirname(path)
    for split in manifest["splits"].values():
        for shard in split["shards"]:
            shard_path = os.path.join(manifest["directory"], shard["file"])
            if not os.path.exists(shard_path):
                raise MissingDataError(f"{path} lists {shard['file']}, which is missing")
            if verify and sha256_of(shard_path) != shard["sha256"]:
                raise DataFormatError(f"{shard_path}: sha256 does not match {MANIFEST} (file changed or corrupt)")
    return manifest
