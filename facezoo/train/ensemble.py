"""Ensembles of trained DMTL models for one head — the three of the gender report:

1. ``vote``: every member votes for its predicted class; a tie goes to the class with the highest
   mean probability.
2. ``weighted_vote``: votes weighted by each member's validation accuracy (``accuracy_weights``).
3. ``feature_concat``: the members' pooled trunk features are concatenated and a small head
   (normalisation, one hidden layer, softmax) is trained on them; the members stay frozen.

``member_outputs`` runs every member once over a dataset and collects what all three need.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from facezoo.models.dmtl import heads_of
from facezoo.models.heads import decode_head

METHODS = ("vote", "weighted_vote", "feature_concat")
FEATURE_LAYER = "trunk_pool"


@dataclasses.dataclass
class MemberOutputs:
    """What the members said about one dataset.

    Attributes:
        probabilities: (M, N, K) class probabilities of each member.
        votes: (M, N) each member's predicted class index.
        features: M arrays (N, D_m) of pooled trunk features.
        labels: (N,) labels of the head (meaningful where ``mask`` is 1).
        mask: (N,) 1 where the label is known.
    """

    probabilities: np.ndarray
    votes: np.ndarray
    features: list
    labels: np.ndarray
    mask: np.ndarray


def _head(model, output):
    for _, spec, name in heads_of(model):
        if name == output:
            return spec.attribute
    raise ValueError(f"{model.name} has no head {output!r}; it has {[n for _, _, n in heads_of(model)]}")


def member_outputs(models: Sequence, dataset, output: str, feature_layer: str = FEATURE_LAYER) -> MemberOutputs:
    """Runs every member over ``dataset`` (finite ``(images, labels, masks)`` batches keyed by output names).

    Args:
        models: trained DMTL models with the head ``output``.
        dataset: e.g. ``for_model(pipeline(..., training=False), name, config)``; iterated once per member.
        output: the head's output name (``<dataset>__<attribute>``).
        feature_layer: the layer whose output is the member's feature vector.
    """
    if not models:
        raise ValueError("member_outputs: no models")
    probabilities, votes, features = [], [], []
    labels = masks = None
    for model in models:
        attribute = _head(model, output)
        extractor = keras.Model(model.input, [model.get_layer(feature_layer).output, model.output[output]])
        forward = tf.function(lambda x, m=extractor: m(x, training=False))
        feats, logits, labs, msks = [], [], [], []
        for images, batch_labels, batch_masks in dataset:
            f, o = forward(images)
            feats.append(f.numpy())
            logits.append(o.numpy())
            labs.append(batch_labels[output].numpy())
            msks.append(batch_masks[output].numpy())
        decoded = decode_head(attribute, np.concatenate(logits))
        probabilities.append(decoded["probabilities"])
        votes.append(decoded["index"])
        features.append(np.concatenate(feats).reshape(len(decoded["index"]), -1))
        if labels is None:
            labels, masks = np.concatenate(labs).astype(np.int64), np.concatenate(msks)
        elif len(labels) != len(decoded["index"]):
            raise ValueError("member_outputs: the dataset gave a different number of examples to each member; "
                             "pass a deterministic, finite dataset")
    return MemberOutputs(np.stack(probabilities), np.stack(votes), features, labels, masks)


def accuracy(predicted, labels, mask=None) -> float:
    """Share of labelled examples predicted right."""
    keep = np.ones(len(labels), bool) if mask is None else np.asarray(mask) > 0.5
    return float(np.mean(np.asarray(predicted)[keep] == np.asarray(labels)[keep]))


def member_accuracies(outputs: MemberOutputs) -> np.ndarray:
    """(M,) accuracy of each member on the labelled examples of ``outputs``."""
    return np.array([accuracy(v, outputs.labels, outputs.mask) for v in outputs.votes])


def accuracy_weights(accuracies) -> np.ndarray:
    """Voting weights proportional to validation accuracy, summing to 1."""
    acc = np.asarray(accuracies, np.float64)
    if acc.ndim != 1 or acc.size == 0 or np.any(acc < 0) or acc.sum() <= 0:
        raise ValueError(f"accuracy_weights: need non-negative accuracies with a positive sum, got {accuracies}")
    return acc / acc.sum()


def weighted_vote(votes, probabilities, weights=None) -> np.ndarray:
    """(N,) class chosen by the (weighted) votes; ties go to the highest mean probability.

    Args:
        votes: (M, N) class index per member.
        probabilities: (M, N, K) class probabilities per member.
        weights: (M,) vote weights (default: equal — plain majority voting).
    """
    votes = np.asarray(votes)
    probabilities = np.asarray(probabilities)
    m, n, k = probabilities.shape
    w = np.full(m, 1.0 / m) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (m,):
        raise ValueError(f"weighted_vote: {w.shape[0] if w.ndim else 0} weights for {m} members")
    tally = np.zeros((n, k))
    for member in range(m):
        tally[np.arange(n), votes[member]] += w[member]
    best = tally.max(axis=1, keepdims=True)
    tied = np.isclose(tally, best)
    mean_probability = probabilities.mean(axis=0)
    return np.where(tied, mean_probability, -np.inf).argmax(axis=1)


def concat_head(input_dim: int, num_classes: int, hidden: int = 64, dropout: float = 0.3, seed: int = 0):
    """The feature-concatenation head: normalisation, ``hidden`` ReLU units, dropout, class logits."""
    inputs = keras.Input((input_dim,), name="member_features")
    x = keras.layers.Normalization(name="feature_norm")(inputs)
    x = keras.layers.Dense(hidden, activation="relu", name="ensemble_fc")(x)
    x = keras.layers.Dropout(dropout, seed=seed, name="ensemble_dropout")(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, name="ensemble_logits")(x), name="concat_head")


def train_concat_head(features: Sequence[np.ndarray], labels, mask=None, *, num_classes: int, hidden: int = 64,
                      epochs: int = 50, learning_rate: float = 1e-3, seed: int = 0):
    """Trains ``concat_head`` on the members' concatenated features of labelled examples; returns it.

    Args:
        features: M arrays (N, D_m) from ``member_outputs`` (on data the head may learn from, e.g.
            the training split — never the split it is evaluated on).
        labels: (N,) class indices.
        mask: (N,) 1 where the label is known.
        num_classes: K.
    """
    x = np.concatenate([np.asarray(f, np.float32) for f in features], axis=1)
    keep = np.ones(len(x), bool) if mask is None else np.asarray(mask) > 0.5
    x, y = x[keep], np.asarray(labels)[keep]
    if len(x) == 0:
        raise ValueError("train_concat_head: no labelled examples")
    keras.utils.set_random_seed(seed)
    head = concat_head(x.shape[1], num_classes, hidden, seed=seed)
    head.get_layer("feature_norm").adapt(x)
    head.compile(optimizer=keras.optimizers.Adam(learning_rate),
                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    head.fit(x, y, batch_size=64, epochs=epochs, verbose=0, shuffle=True)
    return head


def predict_concat_head(head, features: Sequence[np.ndarray]) -> np.ndarray:
    """(N, K) class probabilities of a trained ``concat_head``."""
    x = np.concatenate([np.asarray(f, np.float32) for f in features], axis=1)
    logits = head(x, training=False)
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))


def combine(method: str, outputs: MemberOutputs, *, weights=None, head=None) -> np.ndarray:
    """(N,) ensemble prediction by ``method`` (one of ``METHODS``).

    Args:
        method: ``vote``, ``weighted_vote`` (needs ``weights``) or ``feature_concat`` (needs ``head``).
        outputs: the members' outputs on the data to predict.
        weights: voting weights (``accuracy_weights`` of validation accuracies).
        head: a trained ``concat_head``.
    """
    if method == "vote":
        return weighted_vote(outputs.votes, outputs.probabilities)
    if method == "weighted_vote":
        if weights is None:
            raise ValueError("combine('weighted_vote') needs weights=accuracy_weights(validation accuracies)")
        return weighted_vote(outputs.votes, outputs.probabilities, weights)
    if method == "feature_concat":
        if head is None:
            raise ValueError("combine('feature_concat') needs head=train_concat_head(...)")
        return predict_concat_head(head, outputs.features).argmax(axis=1)
    raise ValueError(f"unknown ensemble method {method!r}; choose one of {METHODS}")
