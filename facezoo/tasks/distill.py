"""Distillation task for facezoo's loop: a student regresses a teacher's face embedding.

Batches are ``(images, targets)``: network-ready float images and the teacher's ``(B, D)`` vectors. The
loss is the squared Euclidean distance between student and teacher vectors (the teacher's own metric, so the
student's distances read on the teacher's scale), averaged over the batch.

Validation reports, on held-out faces, the mean squared distance (``mse``), the mean cosine similarity, and
how often student and teacher agree on "same person" (distance below ``threshold``) over pairs of those
faces (``pair_agreement``; balanced over the teacher's same and different pairs, since most random pairs are
different people).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from facezoo.tasks.base import Task


def pair_agreement(student: np.ndarray, teacher: np.ndarray, threshold: float, max_pairs: int = 200_000,
                   seed: int = 0) -> float:
    """Balanced agreement of the two embeddings' same/different decisions over pairs of rows."""
    n = len(teacher)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, max_pairs)
    j = rng.integers(0, n, max_pairs)
    keep = i != j
    i, j = i[keep], j[keep]
    t = np.linalg.norm(teacher[i] - teacher[j], axis=1) < threshold
    s = np.linalg.norm(student[i] - student[j], axis=1) < threshold
    rates = [np.mean(s[t] == t[t]) if t.any() else np.nan, np.mean(s[~t] == t[~t]) if (~t).any() else np.nan]
    return float(np.nanmean(rates))


class DistillTask(Task):
    """Trains ``build()`` (a model mapping images to ``(B, D)``) to reproduce teacher vectors.

    Args:
        build: zero-argument callable returning the student (called inside the strategy scope).
        threshold: the teacher's same-person distance, for ``pair_agreement``.
        batch_size: batch of validation inference.
    """

    def __init__(self, build, *, threshold: float = 0.6, batch_size: int = 128):
        self.build = build
        self.threshold = float(threshold)
        self.batch_size = int(batch_size)

    def build_model(self) -> keras.Model:
        return self.build()

    def train_step(self, batch, model, optimizers, global_batch):
        images, targets = batch
        with tf.GradientTape() as tape:
            student = model(images, training=True)
            per_example = tf.reduce_sum(tf.square(student - tf.cast(targets, student.dtype)), axis=-1)
            loss = tf.reduce_sum(per_example) / global_batch
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            regular = tf.add_n(model.losses) / replicas if model.losses else 0.0
            total = loss + regular
        optimizer = optimizers["0"]
        variables = model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
        return {"loss": loss}

    def embed(self, model, images: np.ndarray) -> np.ndarray:
        out = [model(tf.convert_to_tensor(images[s: s + self.batch_size]), training=False).numpy()
               for s in range(0, len(images), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), np.float32)

    def validate(self, model, val_data: dict) -> dict:
        images, targets = val_data["images"], val_data["targets"]
        student = self.embed(model, images)
        diff = np.sum((student - targets) ** 2, axis=1)
        cosine = np.sum(student * targets, axis=1) / (
            np.linalg.norm(student, axis=1) * np.linalg.norm(targets, axis=1) + 1e-12)
        return {"val/mse": float(diff.mean()), "val/cosine": float(cosine.mean()),
                "val/pair_agreement": pair_agreement(student, targets, self.threshold)}

    def score(self, metrics: dict):
        return -metrics["val/mse"] if "val/mse" in metrics else None
