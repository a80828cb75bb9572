"""Training face-verification embeddings: triplet loss with online semi-hard mining, an optional additive-margin
softmax over identities, a P x K identity-balanced sampler, and the ``Task`` that ``Trainer`` runs.

- ``semi_hard_triplet_loss`` (FaceNet, Schroff et al. 2015): every anchor-positive pair of a batch is used;
  its negative is the closest one still farther than the positive (semi-hard), or, when the batch has none, the
  farthest negative; loss ``max(d(a,p) - d(a,n) + margin, 0)`` on squared Euclidean distances of unit vectors.
- ``CosineLogits`` + ``am_softmax_loss`` (AM-Softmax / CosFace): cosine of the embedding with one learnt unit
  vector per identity, ``scale * (cos - margin)`` for the true identity, softmax cross-entropy.
- ``PKSampler`` / ``pk_dataset``: each batch holds P people with K images each, so every anchor has positives
  and the mining has negatives.
- ``VerifyTask``: the model is ``training_model(embedder, num_identities)``; its layer ``"embedding"`` is the
  embedding model that ships (``embedding_of``).
"""
from __future__ import annotations

import zlib

import keras
import numpy as np
import tensorflow as tf

from facezoo.tasks.base import Task

EMBEDDING_LAYER = "embedding"


# ----------------------------------------------------------------------------- losses
def pairwise_squared_distances(embeddings):
    """(B, D) -> (B, B) squared Euclidean distances (clipped at 0, exact 0 on the diagonal)."""
    e = tf.cast(embeddings, tf.float32)
    sq = tf.reduce_sum(e * e, axis=1)
    d = sq[:, None] + sq[None, :] - 2.0 * tf.matmul(e, e, transpose_b=True)
    d = tf.maximum(d, 0.0)
    return d * (1.0 - tf.eye(tf.shape(e)[0]))


def semi_hard_triplet_loss(labels, embeddings, margin: float = 0.2):
    """Mean triplet loss over every anchor-positive pair of the batch, with online semi-hard negatives.

    Args:
        labels: (B,) integer identities.
        embeddings: (B, D) embeddings (unit length for the usual margin of 0.2).
        margin: the FaceNet margin alpha.

    Returns:
        ``(loss, active)``: the mean over valid anchor-positive pairs (those with a negative in the batch) of
        ``max(d_ap - d_an + margin, 0)``, and the share of those pairs with a positive loss. Both 0 when the
        batch has no valid pair.
    """
    labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
    d = pairwise_squared_distances(embeddings)
    same = tf.equal(labels[:, None], labels[None, :])
    eye = tf.eye(tf.shape(labels)[0], dtype=tf.bool)
    positive = tf.logical_and(same, tf.logical_not(eye))
    negative = tf.logical_not(same)
    d_ap = d[:, :, None]  # (anchor, positive, 1)
    d_an = d[:, None, :]  # (anchor, 1, negative)
    neg = negative[:, None, :]
    semi = tf.logical_and(neg, d_an > d_ap)
    big = tf.constant(np.float32(1e9))
    closest_semi = tf.reduce_min(tf.where(semi, d_an, big), axis=2)
    farthest = tf.reduce_max(tf.where(neg, d_an, -big), axis=2)
    has_semi = tf.reduce_any(semi, axis=2)
    chosen = tf.where(has_semi, closest_semi, farthest)
    valid = tf.logical_and(positive, tf.reduce_any(negative, axis=1)[:, None])
    losses = tf.maximum(d - chosen + margin, 0.0)
    mask = tf.cast(valid, tf.float32)
    count = tf.reduce_sum(mask)
    loss = tf.math.divide_no_nan(tf.reduce_sum(losses * mask), count)
    active = tf.math.divide_no_nan(tf.reduce_sum(tf.cast(losses > 0, tf.float32) * mask), count)
    return loss, active


@keras.saving.register_keras_serializable(package="facezoo")
class CosineLogits(keras.layers.Layer):
    """Cosine similarity of each (normalised) input with ``units`` learnt unit vectors: (B, D) -> (B, units)."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(int(input_shape[-1]), self.units),
                                      initializer="glorot_uniform")

    def call(self, x):
        x = keras.ops.normalize(x, axis=-1)
        w = keras.ops.normalize(self.kernel, axis=0)
        return keras.ops.matmul(x, w)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def am_softmax_loss(labels, cosines, margin: float = 0.35, scale: float = 30.0):
    """Per-example additive-margin softmax loss: cross-entropy of ``scale * (cos - margin * onehot)``."""
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    onehot = tf.one_hot(labels, tf.shape(cosines)[-1], dtype=cosines.dtype)
    logits = scale * (cosines - margin * onehot)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)


# ----------------------------------------------------------------------------- models
def embedding_model(base: keras.Model, dim: int = 128) -> keras.Model:
    """``base`` as the embedding model named ``"embedding"``: (N, H, W, C) -> (N, dim) of unit length.

    A trunk ending in a feature map gets global average pooling, an output of another size a ``Dense(dim)``,
    and any output not already ending in ``UnitNormalization`` gets one (e.g. a student regressing dlib's
    descriptors, which are not unit length).
    """
    x = base.outputs[0] if isinstance(base.outputs, (list, tuple)) else base.outputs
    if len(base.outputs) != 1:
        raise ValueError(f"{base.name}: an embedding trunk must have one output, it has {len(base.outputs)}")
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="embedding_pool")(x)
    elif len(x.shape) != 2:
        raise ValueError(f"{base.name}: output shape {x.shape} is neither (N, D) nor a feature map")
    if x.shape[-1] != dim:
        x = keras.layers.Dense(dim, name="embedding_dense")(x)
    if not isinstance(base.layers[-1], keras.layers.UnitNormalization) or x is not base.outputs[0]:
        x = keras.layers.UnitNormalization(name="embedding_l2")(x)
    inputs = base.inputs[0] if len(base.inputs) == 1 else base.inputs  # one tensor in, not a list of one
    return keras.Model(inputs, x, name=EMBEDDING_LAYER)


def training_model(embedder: keras.Model, num_identities: int = 0) -> keras.Model:
    """Outputs ``{"embedding": ...}`` plus ``"cosines"`` (``CosineLogits``) when ``num_identities`` > 0."""
    inputs = keras.Input(embedder.input_shape[1:], name="image")
    emb = embedder(inputs)
    outputs = {"embedding": emb}
    if num_identities:
        outputs["cosines"] = CosineLogits(num_identities, name="identity_cosines")(emb)
    return keras.Model(inputs, outputs, name="verify_train")


def embedding_of(model: keras.Model) -> keras.Model:
    """The shippable embedding model inside a ``training_model`` (or the model itself if it is one)."""
    if model.name == EMBEDDING_LAYER:
        return model
    return model.get_layer(EMBEDDING_LAYER)


# ----------------------------------------------------------------------------- sampling
def label_records(records):
    """``[(path, identity), ...]`` -> ``(paths, int32 labels, identity names)`` (names sorted)."""
    records = list(records)
    names = sorted({str(identity) for _, identity in records})
    index = {n: i for i, n in enumerate(names)}
    return [p for p, _ in records], np.array([index[str(i)] for _, i in records], np.int32), names


class PKSampler:
    """Endless batches of ``p`` identities x ``k`` images (indices into ``labels``), seeded.

    Identities with one image cannot give a positive and are left out; an identity with fewer than ``k``
    images repeats some (each batch still holds at least two different images of it).
    """

    def __init__(self, labels, p: int, k: int, seed: int = 0):
        if p < 2 or k < 2:
            raise ValueError(f"P x K sampling needs p >= 2 people and k >= 2 images each, got p={p}, k={k}")
        labels = np.asarray(labels).reshape(-1)
        groups: dict[int, list] = {}
        for i, label in enumerate(labels.tolist()):
            groups.setdefault(label, []).append(i)
        self.groups = [np.array(v) for _, v in sorted(groups.items()) if len(v) >= 2]
        if len(self.groups) < p:
            raise ValueError(f"P x K sampling with p={p} needs at least {p} identities with 2 or more images; "
                             f"there are {len(self.groups)}")
        self.p, self.k, self.seed = int(p), int(k), int(seed)

    @property
    def batch_size(self) -> int:
        return self.p * self.k

    def batches(self):
        rng = np.random.default_rng(self.seed)
        while True:
            out = []
            for g in rng.choice(len(self.groups), self.p, replace=False):
                members = self.groups[g]
                if len(members) >= self.k:
                    out.append(rng.choice(members, self.k, replace=False))
                else:
                    extra = rng.choice(members, self.k - len(members), replace=True)
                    out.append(np.concatenate([rng.permutation(members), extra]))
            yield np.concatenate(out).astype(np.int64)


def _images_fn(spec, crops, paths):
    """``indices -> uint8 (n, H, W, 3)`` from a crop array, or from image files fitted to the input."""
    if crops is not None:
        return lambda idx: np.asarray(crops[np.asarray(idx)], np.uint8)
    from facezoo.images import load_image
    from facezoo.preprocessing import fit_to_input

    def load(idx):
        images = [fit_to_input(load_image(paths[int(i)]), spec.input_size, spec.resize, spec.antialias).numpy()
                  for i in np.asarray(idx)]
        return np.round(np.stack(images)).astype(np.uint8)

    return load


def pk_dataset(records, p: int, k: int, *, spec, crops=None, seed: int = 0, flip: bool = True):
    """A repeating ``tf.data.Dataset`` of ``(images, labels)`` batches of ``p * k`` (see ``PKSampler``).

    Args:
        records: ``[(path, identity), ...]``.
        spec: the model's ``PreprocessSpec`` (input size and scaling).
        crops: optional uint8 (N, H, W, 3) array (or memmap) of the records' faces already aligned at the input
            size, in record order; without it images are read and fitted to the input (crops in the framing).
        flip: random horizontal flips.

    Returns:
        ``(dataset, names)``: labels index ``names``.
    """
    paths, labels, names = label_records(records)
    sampler = PKSampler(labels, p, k, seed)
    n = sampler.batch_size
    get = _images_fn(spec, crops, paths)
    h, w = spec.input_size

    def read(idx):
        images = tf.numpy_function(get, [idx], tf.uint8)
        images.set_shape([n, h, w, 3])
        return images, tf.gather(tf.constant(labels), idx)

    def finish(images, y):
        x = tf.cast(images, tf.float32)
        if flip:
            x = _flip(x, seed)
        return spec.normalize(x), y

    ds = tf.data.Dataset.from_generator(sampler.batches, output_signature=tf.TensorSpec([n], tf.int64))
    ds = ds.map(read, num_parallel_calls=2).map(finish, num_parallel_calls=2)
    return ds.prefetch(2), names


def _flip(images, seed):
    coins = tf.random.uniform([tf.shape(images)[0], 1, 1, 1], seed=seed) < 0.5
    return tf.where(coins, tf.reverse(images, axis=[2]), images)


def make_pairs(labels, n_pairs: int, seed: int = 0) -> np.ndarray:
    """``(n, 3)`` int array of ``(i, j, same)``: half same-identity pairs, half different, seeded."""
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(labels == v) for v in np.unique(labels)]
    multi = [g for g in groups if len(g) >= 2]
    if not multi or len(groups) < 2:
        raise ValueError("validation pairs need an identity with 2 images and at least 2 identities")
    out = []
    for t in range(n_pairs):
        if t % 2 == 0:
            g = multi[rng.integers(len(multi))]
            i, j = rng.choice(g, 2, replace=False)
            out.append((i, j, 1))
        else:
            a, b = rng.choice(len(groups), 2, replace=False)
            out.append((rng.choice(groups[a]), rng.choice(groups[b]), 0))
    return np.array(out, np.int64)


def pairs_dataset(pairs, *, spec, crops=None, paths=None, batch_size: int = 64):
    """A finite dataset of ``(images_a, images_b, same)`` batches for ``VerifyTask.validate``."""
    get = _images_fn(spec, crops, paths)
    a_all = get(pairs[:, 0])
    b_all = get(pairs[:, 1])
    ds = tf.data.Dataset.from_tensor_slices((a_all, b_all, pairs[:, 2].astype(bool)))
    return ds.batch(batch_size).map(lambda a, b, s: (spec.normalize(a), spec.normalize(b), s))


# ----------------------------------------------------------------------------- the task
class VerifyTask(Task):
    """Triplet loss (+ optional AM-softmax) on ``(images, labels)`` batches from ``pk_dataset``.

    Args:
        model_fn: zero-argument callable returning a ``training_model`` (called in the strategy scope).
        margin: triplet margin (squared distances of unit vectors lie in [0, 4]).
        am_weight: weight of the AM-softmax loss (0: triplet loss only; the model then needs no ``cosines``).
        am_margin, am_scale: AM-softmax margin and scale.
    """

    def __init__(self, model_fn, *, margin: float = 0.2, am_weight: float = 0.0, am_margin: float = 0.35,
                 am_scale: float = 30.0):
        if margin < 0 or am_weight < 0:
            raise ValueError(f"margin and am_weight must be >= 0, got {margin}, {am_weight}")
        self.model_fn = model_fn
        self.margin, self.am_weight = float(margin), float(am_weight)
        self.am_margin, self.am_scale = float(am_margin), float(am_scale)
        self._forward = None

    def build_model(self):
        model = self.model_fn()
        if self.am_weight and "cosines" not in model.output:
            raise ValueError("am_weight > 0 needs a training_model built with num_identities > 0")
        return model

    def train_step(self, batch, model, optimizers, global_batch):
        images, labels = batch
        scale = tf.cast(tf.shape(images)[0], tf.float32) / float(global_batch)
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            outputs = model(images, training=True)
            triplet, active = semi_hard_triplet_loss(labels, outputs["embedding"], self.margin)
            loss = triplet * scale
            values = {"triplet": triplet * scale, "active_triplets": active * scale}
            if self.am_weight:
                am = tf.reduce_sum(am_softmax_loss(labels, outputs["cosines"], self.am_margin, self.am_scale))
                am = am / float(global_batch)
                loss += self.am_weight * am
                values["am_softmax"] = am
            if model.losses:
                loss += tf.add_n(model.losses) / tf.distribute.get_strategy().num_replicas_in_sync
        grads = tape.gradient(loss, variables)
        optimizers["0"].apply_gradients(zip(grads, variables))
        return {"loss": loss, **values}

    def validate(self, model, val_data):
        """Per validation set of pairs: ROC AUC and best-threshold accuracy (``<name>/auc``, ``<name>/accuracy``)."""
        from facezoo.tasks.pair_metrics import best_threshold, roc_auc
        if self._forward is None or self._forward[0] is not model:
            self._forward = (model, tf.function(lambda x: model(x, training=False)["embedding"]))
        forward = self._forward[1]
        flat = {}
        for name, dataset in val_data.items():
            dists, same = [], []
            for a, b, s in dataset:
                ea, eb = forward(a).numpy(), forward(b).numpy()
                dists.append(np.linalg.norm(ea - eb, axis=1))
                same.append(s.numpy())
            d, s = np.concatenate(dists), np.concatenate(same)
            flat[f"{name}/auc"] = roc_auc(d, s)
            flat[f"{name}/accuracy"] = best_threshold(d, s)[1]
        return flat

    def score(self, metrics):
        aucs = [v for k, v in metrics.items() if k.endswith("/auc")]
        return float(np.mean(aucs)) if aucs else None


def person_split(names, val_percent: int, salt: str = "facezoo-verify") -> set:
    """The identities of ``names`` that go to validation: a stable hash of each name (a person never splits)."""
    return {n for n in names if zlib.crc32(f"{salt}:{n}".encode()) % 100 < val_percent}
