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


def lfw_layout(root, people=12, images=3, folds=((0, 1), (2, 3), (4, 5, 6, 7)), seed=0):
    """A tiny LFW tree of real-looking photos: 250x250 crops of the bundled (public-domain) portrait, each person
    with its own colour tint and mirror, each image shifted a little; ``pairs.txt`` with one fold per tuple of
    person numbers (per fold 2 same and 2 different pairs). Returns (root, names)."""
    import pathlib

    import numpy as np
    from PIL import Image

    import facezoo
    root = pathlib.Path(root)
    photo = np.asarray(Image.open(facezoo.sample_photo()).convert("RGB"))
    rng = np.random.default_rng(seed)
    names = [f"Person_{chr(65 + i)}" for i in range(people)]
    for p, name in enumerate(names):
        tint = rng.uniform(0.6, 1.3, 3)
        for i in range(images):
            dx, dy = rng.integers(-12, 13, 2)
            crop = photo[40 + dy:290 + dy, 100 + dx:350 + dx].astype(np.float32) * tint
            crop = np.clip(crop, 0, 255).astype(np.uint8)
            if p % 2:
                crop = crop[:, ::-1]
            folder = root / "lfw-deepfunneled" / name
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(crop).save(folder / f"{name}_{i + 1:04d}.jpg", quality=92)
    lines = [f"{len(folds)}\t2"]
    for members in folds:
        a, b = names[members[0]], names[members[1]]
        lines += [f"{a}\t1\t2", f"{b}\t2\t3", f"{a}\t1\t{b}\t1", f"{a}\t3\t{b}\t2"]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root, names
