"""The distillation task and the face-trunk builder (issue #17 item 2)."""
import numpy as np
import pytest
import tensorflow as tf

from facezoo.models.face_trunk import face_embedding_model, trunk_weights_path
from facezoo.models.weights import PRETRAINED
from facezoo.tasks.distill import DistillTask, pair_agreement
from facezoo.train.loop import TrainConfig, Trainer


def test_pair_agreement_is_one_for_identical_embeddings_and_low_for_unrelated_ones():
    rng = np.random.default_rng(0)
    people = rng.normal(size=(20, 16)).astype(np.float32)
    teacher = np.repeat(people, 5, axis=0) + 0.05 * rng.normal(size=(100, 16)).astype(np.float32)
    assert pair_agreement(teacher, teacher, threshold=1.0) == 1.0
    shuffled = teacher[rng.permutation(100)]
    assert pair_agreement(shuffled, teacher, threshold=1.0) < 0.8


def test_face_embedding_model_layers_and_unknown_backbone():
    model = face_embedding_model("resnet18", weights=None, input_size=32, embedding_dim=8)
    assert model.output_shape == (None, 8)
    assert {"trunk_pool", "embedding"} <= {layer.name for layer in model.layers}
    with pytest.raises(ValueError, match="unknown backbone"):
        face_embedding_model("nope", weights=None)


def test_facezoo_face_weights_are_registered_and_missing_backbones_named():
    assert "facezoo-face" in PRETRAINED
    with pytest.raises(ValueError, match="no distilled face trunk"):
        trunk_weights_path("resnet50")


def test_shipped_facezoo_face_trunk_loads_into_the_builder():
    from facezoo.models import efficientnet_lite0
    trunk = efficientnet_lite0(include_top=False, weights="facezoo-face", input_shape=(112, 112, 3),
                               activation="relu6")
    fresh = efficientnet_lite0(include_top=False, weights=None, input_shape=(112, 112, 3), activation="relu6")
    kernel = {v.path: v.numpy() for v in trunk.weights}["stem_conv/kernel"]
    assert not np.allclose(kernel, {v.path: v.numpy() for v in fresh.weights}["stem_conv/kernel"])
    features = trunk(np.zeros((1, 112, 112, 3), np.float32))
    assert features.shape[-1] == 1280 and np.isfinite(features.numpy()).all()


def test_distill_task_learns_a_linear_teacher(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, (64, 32, 32, 3)).astype(np.float32)
    projection = rng.normal(size=(3, 8)).astype(np.float32)
    targets = images.mean(axis=(1, 2)) @ projection  # depends on the mean colour only: learnable
    data = tf.data.Dataset.from_tensor_slices((images, targets)).repeat().batch(16)
    task = DistillTask(lambda: face_embedding_model("resnet18", weights=None, input_size=32, embedding_dim=8))
    val = {"images": images[:32], "targets": targets[:32]}
    config = TrainConfig(epochs=3, steps_per_epoch=20, learning_rate=3e-3, weight_decay=0.0, schedule="constant")
    trainer = Trainer(task, data, config, tmp_path, global_batch=16, val_data=val)
    history = trainer.fit(verbose=False)
    assert history[-1]["val/mse"] < 0.5 * history[0]["val/mse"] or history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert history[-1]["score"] == -history[-1]["val/mse"]
    assert (tmp_path / "best.keras").exists()
