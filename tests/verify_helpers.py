"""Tiny verification models for tests: a random conv net with unit-length 128-d output, packaged with a card."""
from __future__ import annotations

import os

import keras

from facezoo.inference.embedding import RECOGNITION_112


def tiny_embedding_model(input_size=(32, 32), dim=128, seed=0):
    """Input (H, W, 3) -> conv -> pooled -> Dense(dim) -> unit length (a functional Keras model)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((*input_size, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(dim)(x)
    outputs = keras.layers.UnitNormalization(name="embedding_l2")(x)
    return keras.Model(inputs, outputs, name="tiny_embedder")


def package_tiny_embedder(out_dir, name="tiny_verify", input_size=(32, 32), threshold=0.9, seed=0, model=None,
                          extra_files=()):
    """A packaged verification model folder (model.keras + card.json); returns (folder, card)."""
    from facezoo.preprocessing import PreprocessSpec
    from facezoo.zoo import ModelCard
    from facezoo.zoo.package import package_model
    model = model or tiny_embedding_model(input_size, seed=seed)
    src = os.path.join(out_dir, f"{name}-src.keras")
    model.save(src)
    card = ModelCard(
        name=name, task="verification", description="tiny random embedding model for tests",
        architecture={"embedding_dim": 128}, label_spaces=[],
        preprocessing=PreprocessSpec(input_size, framing=RECOGNITION_112).to_dict(),
        training_data={}, split="none", license="test only", thresholds={"distance": threshold})
    folder = os.path.join(out_dir, name)
    package_model(src, folder, card, extra_files=extra_files)
    os.remove(src)
    return folder, card
