"""The training/evaluation input pipeline: TFRecord shards (or FaceRecords) to batches.

Element format of every dataset built here: ``(images, labels, masks)`` with

* ``images`` float32 ``(B, h, w, 3)`` in [-1, 1]: decoded, ``fit_to_input`` to ``image_size``,
  augmented (training only), then ``preprocess_input`` — the same two functions inference uses;
* ``labels`` dict attribute name -> ``(B,)``: float32 0/1 for binary attributes, int32 class
  index for nominal and ordinal ones (0 where unknown);
* ``masks`` dict attribute name -> float32 ``(B,)``: 1 where the label is known, 0 where not.

Order of steps: shard files (shuffled when training) -> parallel interleaved reads -> parse
(vectorised, 256 at a time) -> decode (``tfrecord.decode_stored_image``: the pixels ``load_image`` gave
the converter) -> ``fit_to_input`` -> uint8 -> ``cache`` -> shuffle -> augment -> batch ->
``preprocess_input`` -> prefetch. Shuffling comes before augmentation (not after) so the shuffle buffer
holds uint8 images, a quarter of the memory of float ones; the examples seen are distributed identically
either way. ``from_records`` reads files with ``load_image`` instead and shares everything from ``fit_to_input`` on.

Iterating inside ``named_input_errors`` turns TensorFlow's report of a damaged shard or a refused image into a
``DataFormatError`` or ``ImageError`` naming the file.

Distribution: ``auto_shard_policy`` is ``DATA``. ``FILE`` would fail outright when a split has
fewer shards than workers (small validation splits often have one), and the data sets here are
small enough that every worker reading every shard costs little. ``DATA`` sharding keeps every
k-th element of each worker's stream, which partitions the data only if all workers produce the
same order; so when ``TF_CONFIG`` names more than one worker the pipeline runs deterministically
with a shared default seed (``MULTI_WORKER_SEED``) unless a seed is given.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from facezoo.attributes import LabelSpace
from facezoo.data.augment import make_augment
from facezoo.data.records import DataFormatError, FaceRecord
from facezoo.data.tfrecord import MANIFEST, decode_stored_image, read_manifest
from facezoo.files import sha256_of
from facezoo.images import ImageError, load_image
from facezoo.preprocessing import fit_to_input, preprocess_input

AUTOTUNE = tf.data.AUTOTUNE
MULTI_WORKER_SEED = 20240601
# The mapped functions use tf.cond explicitly; skipping AutoGraph's source conversion saves
# seconds of tracing per pipeline and a warning per lambda.
_plain_python = tf.autograph.experimental.do_not_convert


def _worker_count() -> int:
    """Number of workers in ``TF_CONFIG`` (1 when unset)."""
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except ValueError:
        return 1
    return max(1, sum(len(cluster.get(role, [])) for role in ("chief", "worker")))


def _label_keys(label_space: LabelSpace, label_keys: Sequence[str] | None) -> list[str]:
    if label_keys is None:
        return label_space.names
    unknown = [k for k in label_keys if k not in label_space.names]
    if unknown:
        raise ValueError(f"label_keys {unknown} are not in label space {label_space.name!r} ({label_space.names})")
    return list(label_keys)


def _fit(image, image_size):
    """uint8 (h, w, 3) -> uint8 at ``image_size`` via ``fit_to_input``, rounded as inference rounds."""
    return tf.cast(tf.round(fit_to_input(image, image_size)), tf.uint8)


def _read_image(path) -> np.ndarray:
    """``load_image`` of a path handed over by ``tf.numpy_function`` (as bytes)."""
    return load_image(os.fsdecode(path))


def _finish(ds, label_space, keys, *, batch_size, training, augment, cache, shuffle_buffer, seed,
            deterministic, drop_remainder):
    """The shared tail: cache, shuffle, augment, batch, unpack labels, scale to [-1, 1], prefetch.

    ``ds`` yields ``(uint8 image, int32 labels (K,), float32 masks (K,))`` with the K ``keys``
    packed into one vector each: three tensors per example instead of 2K + 1 keeps the
    per-element cost of cache, shuffle and batch low. Batches are unpacked into dicts at the end.
    """
    if cache is True:
        ds = ds.cache()
    elif cache:
        ds = ds.cache(os.fspath(cache))
    if training and shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if training and augment is not None:
        augmenter = make_augment(augment) if isinstance(augment, Mapping) else augment
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

        @_plain_python
        def apply(element, pair):
            image, labels, masks = element
            paired = {k: (labels[i], masks[i]) for i, k in enumerate(keys)}
            image, _, paired = augmenter(image, None, paired, seed=pair)
            return (image, tf.stack([paired[k][0] for k in keys]), tf.stack([paired[k][1] for k in keys]))

        ds = tf.data.Dataset.zip(ds, seeds).map(apply, num_parallel_calls=AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=training if drop_remainder is None else drop_remainder,
                  num_parallel_calls=AUTOTUNE)
    binary = [label_space[k].kind == "binary" for k in keys]

    @_plain_python
    def unpack(images, labels, masks):
        # One unstack per dtype instead of a slice and a cast per attribute.
        as_float = tf.unstack(tf.cast(labels, tf.float32), len(keys), axis=1) if any(binary) else None
        as_int = tf.unstack(labels, len(keys), axis=1) if not all(binary) else None
        return (preprocess_input(images),
                {k: (as_float if b else as_int)[i] for i, (k, b) in enumerate(zip(keys, binary))},
                dict(zip(keys, tf.unstack(masks, len(keys), axis=1))))

    ds = ds.map(unpack, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def _resolve_determinism(deterministic: bool | None, training: bool, seed):
    if _worker_count() > 1:
        return True, MULTI_WORKER_SEED if seed is None else seed
    return (not training) if deterministic is None else deterministic, seed


def pipeline(manifest_dir_or_manifest, split: str, *, image_size, batch_size: int, training: bool,
             augment: Callable | Mapping | None = None, cache=True, shuffle_buffer: int = 2048,
             seed: int | None = None, deterministic: bool | None = None, drop_remainder: bool | None = None,
             label_keys: Sequence[str] | None = None) -> tf.data.Dataset:
    """Builds the ``(images, labels, masks)`` dataset of one split of a converted data set.

    Args:
        manifest_dir_or_manifest: the folder ``convert`` wrote, or the dict ``read_manifest`` returned.
        split: ``train``, ``val``, ``test``, a fold name ... (must be in the manifest).
        image_size: ``(height, width)`` of the model input.
        batch_size: examples per batch.
        training: shuffle files and examples, apply ``augment``, and drop the last partial batch
            (unless ``drop_remainder`` says otherwise).
        augment: None, an ``Augmenter`` config dict (see ``facezoo.data.augment.DEFAULT_AUGMENT``),
            or a callable ``f(image, landmarks, labels, seed=...) -> (image, landmarks, labels)``
            taking a uint8 (h, w, 3) image, None, and a dict name -> (label, mask). It is traced
            without AutoGraph, so branch on tensors with ``tf.cond``, not ``if``.
        cache: True caches decoded uint8 images in memory, a path caches them in that file, False
            not at all. Augmentation happens after the cache, so it differs every epoch.
        shuffle_buffer: examples in the shuffle buffer (each ``h * w * 3`` bytes).
        seed: seeds file order, shuffling and augmentation; None for a fresh random run.
        deterministic: keep element order fixed across runs. None (default) means "when not
            training": evaluation batches come in the reader's record order, training takes
            whichever element is ready first.
        drop_remainder: drop the last partial batch; defaults to ``training``.
        label_keys: the attributes to return; all of the label space by default.

    Returns:
        A ``tf.data.Dataset``; see the module docstring for the element format.
    """
    manifest = (manifest_dir_or_manifest if isinstance(manifest_dir_or_manifest, Mapping)
                else read_manifest(manifest_dir_or_manifest))
    if split not in manifest["splits"]:
        raise ValueError(f"split {split!r} is not in {manifest['directory']} (has {sorted(manifest['splits'])})")
    label_space = LabelSpace.from_dict(manifest["label_space"])
    keys = _label_keys(label_space, label_keys)
    deterministic, seed = _resolve_determinism(deterministic, training, seed)
    files = [os.path.join(manifest["directory"], s["file"]) for s in manifest["splits"][split]["shards"]]
    spec = {"image/encoded": tf.io.FixedLenFeature([], tf.string)}
    for k in keys:
        spec[f"label/{k}"] = tf.io.FixedLenFeature([], tf.int64)
        spec[f"mask/{k}"] = tf.io.FixedLenFeature([], tf.float32)
    size = (int(image_size[0]), int(image_size[1]))

    @_plain_python
    def parse(serialized):  # a batch at a time: one vectorised parse instead of one per example
        ex = tf.io.parse_example(serialized, spec)
        labels = tf.stack([tf.cast(ex[f"label/{k}"], tf.int32) for k in keys], axis=1)
        masks = tf.stack([ex[f"mask/{k}"] for k in keys], axis=1)
        return ex["image/encoded"], labels, masks

    @_plain_python
    def decode(encoded, labels, masks):
        return _fit(decode_stored_image(encoded), size), labels, masks

    ds = tf.data.Dataset.from_tensor_slices(files)
    if training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    # Reading all shards round-robin returns records in reader order (convert deals them out
    # round-robin); training only needs enough open files to mix well.
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 16) if training else len(files),
                       block_length=1, num_parallel_calls=AUTOTUNE)
    ds = ds.batch(256).map(parse, num_parallel_calls=AUTOTUNE).unbatch()
    ds = ds.map(decode, num_parallel_calls=AUTOTUNE)
    return _finish(ds, label_space, keys, batch_size=batch_size, training=training, augment=augment,
                   cache=cache, shuffle_buffer=shuffle_buffer, seed=seed, deterministic=deterministic,
                   drop_remainder=drop_remainder)


def from_records(records: Iterable[FaceRecord], label_space: LabelSpace, *, image_size, batch_size: int,
                 training: bool = False, augment: Callable | Mapping | None = None, cache=True,
                 shuffle_buffer: int = 2048, seed: int | None = None, deterministic: bool | None = None,
                 drop_remainder: bool | None = None, label_keys: Sequence[str] | None = None) -> tf.data.Dataset:
    """The same dataset as ``pipeline`` built straight from reader records (no TFRecords).

    Image files are read by ``facezoo.images.load_image`` (through ``tf.numpy_function``), exactly as
    ``FaceModel.predict`` reads them; arguments are as for ``pipeline``. Useful for evaluation on a folder
    and for tests. A file ``load_image`` refuses stops the iteration with a TensorFlow error that quotes the
    ``ImageError``; iterate inside ``named_input_errors(records)`` to get the ``ImageError`` itself.
    """
    records = list(records)
    if not records:
        raise ValueError("from_records: no records")
    keys = _label_keys(label_space, label_keys)
    deterministic, seed = _resolve_determinism(deterministic, training, seed)
    labels = np.array([[r.labels.get(k, 0) for k in keys] for r in records], np.int32)
    masks = np.array([[float(k in r.labels) for k in keys] for r in records], np.float32)
    size = (int(image_size[0]), int(image_size[1]))

    @_plain_python
    def load(path, label, mask):
        image = tf.numpy_function(_read_image, [path], tf.uint8, stateful=False)
        image.set_shape([None, None, 3])
        return _fit(image, size), label, mask

    ds = tf.data.Dataset.from_tensor_slices(([r.image for r in records], labels, masks))
    ds = ds.map(load, num_parallel_calls=AUTOTUNE)
    return _finish(ds, label_space, keys, batch_size=batch_size, training=training, augment=augment,
                   cache=cache, shuffle_buffer=shuffle_buffer, seed=seed, deterministic=deterministic,
                   drop_remainder=drop_remainder)


@contextlib.contextmanager
def named_input_errors(source, split: str | None = None):
    """Turns a TensorFlow error raised while the block iterates a dataset into a ``UserError`` naming the input.

    TensorFlow reports a damaged TFRecord as ``DataLossError: corrupted record at 1234`` and a refused image as
    an error quoting a Python traceback, neither naming a file the user could fix. Nothing is checked while
    the block runs well; after an error the inputs are examined to find the culprit::

        with named_input_errors(manifest, "val"):      # or named_input_errors(records)
            for images, labels, masks in pipeline(manifest, "val", ...):
                ...

    Args:
        source: the manifest (folder or dict) given to ``pipeline`` together with ``split``, or the records
            given to ``from_records``.
        split: the split read from the manifest; None when ``source`` is records.

    Raises:
        DataFormatError: a shard of ``split`` is missing or no longer matches the sha256 in its manifest, or
            TensorFlow reported data loss in one of them.
        ImageError: the first record whose image ``load_image`` refuses.
        tf.errors.OpError: the original error, when the inputs are intact (so it is not the input's fault).
    """
    try:
        yield
    except tf.errors.OpError as error:
        culprit = _bad_record(source) if split is None else _bad_shard(source, split, error)
        if culprit is None:
            raise
        raise culprit from None


def _bad_record(records) -> ImageError | None:
    for r in records:
        try:
            load_image(r.image)
        except ImageError as e:
            return e
    return None


def _bad_shard(manifest, split: str, error: tf.errors.OpError) -> DataFormatError | None:
    manifest = manifest if isinstance(manifest, Mapping) else read_manifest(manifest)
    # "{{function_node ...}} corrupted record at 3435 [Op:IteratorGetNext] name:" -> "corrupted record at 3435"
    lines = error.message.strip().splitlines()
    reported = re.sub(r"\{\{[^}]*\}\}\s*|\s*\[Op:.*$", "", lines[0]) if lines else type(error).__name__
    shards = manifest["splits"][split]["shards"]
    for shard in shards:
        path = os.path.join(manifest["directory"], shard["file"])
        if not os.path.isfile(path):
            return DataFormatError(f"{path}: TFRecord shard is missing; re-run `facezoo data convert`")
        if sha256_of(path) != shard["sha256"]:
            return DataFormatError(f"{path}: TFRecord shard is damaged ({reported}): its sha256 no longer matches "
                                   f"{MANIFEST}; re-run `facezoo data convert`")
    if isinstance(error, tf.errors.DataLossError):
        files = ", ".join(s["file"] for s in shards)
        return DataFormatError(f"{manifest['directory']}: a TFRecord shard of split {split!r} ({files}) is damaged "
                               f"({reported}); re-run `facezoo data convert`")
    return None
