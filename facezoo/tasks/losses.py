"""Masked losses for every head kind, and the self-evaluation target.

Each function returns per-example losses (shape ``(B,)``); ``masked_sum`` zeroes the examples whose
label is missing, so an image trains only the heads it has labels for. The trainer divides by the
global batch size, which keeps the loss correct under ``tf.distribute``.
"""
from __future__ import annotations

import tensorflow as tf

from facezoo.attributes import Attribute


def binary_loss(labels, logits):
    """Sigmoid cross-entropy; ``logits`` (B, 1) or (B,), ``labels`` 0/1 (B,)."""
    logits = tf.reshape(tf.cast(logits, tf.float32), [-1])
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32), logits=logits)


def nominal_loss(labels, logits):
    """Softmax cross-entropy over classes; ``labels`` class indices (B,)."""
    labels = tf.maximum(tf.cast(labels, tf.int32), 0)  # masked rows may carry -1
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(logits, tf.float32))


def ordinal_levels(labels, num_classes):
    """CORAL targets: (B, K-1) with 1 where ``label > k``."""
    ks = tf.range(num_classes - 1)
    return tf.cast(tf.cast(labels, tf.int32)[:, None] > ks[None, :], tf.float32)


def ordinal_loss(labels, logits, num_classes):
    """Rank-consistent ordinal loss (CORAL): mean binary cross-entropy over the K-1 rank tasks."""
    levels = ordinal_levels(labels, num_classes)
    per_task = tf.nn.sigmoid_cross_entropy_with_logits(labels=levels, logits=tf.cast(logits, tf.float32))
    return tf.reduce_mean(per_task, axis=-1)


def head_loss(attribute: Attribute, labels, logits):
    """Per-example loss of one head, chosen by ``attribute.kind``."""
    if attribute.kind == "binary":
        return binary_loss(labels, logits)
    if attribute.kind == "nominal":
        return nominal_loss(labels, logits)
    return ordinal_loss(labels, logits, attribute.num_classes)


def predicted_index(attribute: Attribute, logits):
    """Predicted class index in-graph (binary: logit > 0; ordinal: thresholds passed)."""
    logits = tf.cast(logits, tf.float32)
    if attribute.kind == "binary":
        return tf.cast(tf.reshape(logits, [-1]) > 0.0, tf.int32)
    if attribute.kind == "nominal":
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
    return tf.reduce_sum(tf.cast(logits > 0.0, tf.int32), axis=-1)


def confidence_target(attribute: Attribute, labels, logits, tolerance: int = 0):
    """1.0 where the head's prediction is right (within ``tolerance`` classes), else 0.0."""
    err = tf.abs(predicted_index(attribute, logits) - tf.cast(labels, tf.int32))
    return tf.cast(err <= tolerance, tf.float32)


def confidence_loss(attribute: Attribute, labels, logits, conf_logits, tolerance: int = 0):
    """Self-evaluation loss: sigmoid cross-entropy of ``conf_logits`` against "prediction is right"."""
    target = tf.stop_gradient(confidence_target(attribute, labels, logits, tolerance))
    logits = tf.reshape(tf.cast(conf_logits, tf.float32), [-1])
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits)


def masked_sum(per_example, mask):
    """Sum of per-example losses over examples whose label is present."""
    return tf.reduce_sum(per_example * tf.cast(mask, tf.float32))
