"""The face trunk: an ImageNet-initialised backbone taught dlib's face embedding (``recipes/distill_trunk.py``).

``face_embedding_model`` builds the student: a backbone (EfficientNet-Lite0 by default, ``weights="imagenet"``)
on 112x112 aligned RGB faces in the ``FACEZOO_FACE`` framing, global average pooling (``trunk_pool``) and a
linear 128-d ``embedding`` layer that regresses the teacher's descriptor in the teacher's own units (dlib calls
two faces one person below a Euclidean distance of 0.6).

Its layers keep the backbone builders' names, so ``transfer_weights`` (``train_dmtl.py --init``) carries the
distilled trunk into DMTL models built on the same backbone; ``weights="facezoo-face"`` in the backbone builders
reads the trunk shipped in the package.
"""
from __future__ import annotations

import os

import keras

from facezoo.preprocessing import FaceFraming, PreprocessSpec

# The usual tight 5-point face-recognition template of 112x112 crops (ArcFace/InsightFace's points as fractions:
# eyes at 46% of the height, 31% of the width apart), close to dlib's 150x150 chip that the teacher sees.
FACEZOO_FACE = FaceFraming(
    "facezoo_face",
    ((0.3464, 0.4660), (0.6610, 0.4643), (0.5047, 0.6450), (0.3754, 0.8292), (0.6360, 0.8277)),
    "5-point face-recognition template of 112x112 crops (38.29,51.70 73.53,51.50 56.03,71.74 41.55,92.37 "
    "70.73,92.20 pixel indices of 112x112; the framing of facezoo.inference.embedding.RECOGNITION_112)")

# EfficientNet-Lite's own input scaling, (x - 127) / 128.
TRUNK_SPEC = PreprocessSpec((112, 112), color="rgb", scale=1 / 128, offset=-127 / 128, framing=FACEZOO_FACE)
EMBEDDING_DIM = 128
TRUNK_WEIGHTS = "facezoo-face"
# The distilled trunk (weights only) shipped inside the package; written by recipes/ship_trunk.py.
TRUNK_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "exported", "_trunks")


def face_embedding_model(backbone: str = "efficientnet_lite0", *, weights="imagenet", input_size=112,
                         embedding_dim: int = EMBEDDING_DIM, dropout: float = 0.0, target_mean=None,
                         name: str | None = None):
    """The student: ``backbone`` -> ``trunk_pool`` -> dropout -> Dense ``embedding`` (linear, unnormalised).

    Args:
        backbone: a name in ``facezoo.models.registry.BACKBONES``.
        weights: the backbone's weights (``"imagenet"``, ``"facezoo-face"``, None or a path).
        input_size: side of the square RGB input.
        embedding_dim: width of the embedding.
        dropout: dropout before the embedding layer (training only).
        target_mean: the teacher's mean vector: the embedding layer starts at it (bias) with small weights, so
            the first steps do not send large gradients into the pretrained trunk.
        name: model name (default ``face_embedding_<backbone>``).
    """
    from facezoo.models.registry import BACKBONES

    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
    inputs = keras.Input((input_size, input_size, 3), name="image")
    kwargs = {"activation": "relu6"} if backbone.startswith(("efficientnet", "mobilenet")) else {}
    trunk = BACKBONES[backbone](include_top=False, weights=weights, input_tensor=inputs,
                                input_shape=(input_size, input_size, 3), **kwargs)
    x = keras.layers.GlobalAveragePooling2D(name="trunk_pool")(trunk.output)
    if dropout:
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    if target_mean is None:
        x = keras.layers.Dense(embedding_dim, name="embedding")(x)
    else:
        x = keras.layers.Dense(embedding_dim, name="embedding",
                               kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3),
                               bias_initializer=keras.initializers.Constant(list(map(float, target_mean))))(x)
    return keras.Model(inputs, x, name=name or f"face_embedding_{backbone}")


def trunk_weights_path(model_name: str) -> str:
    """Path of the shipped distilled trunk for backbone ``model_name`` (``weights="facezoo-face"``)."""
    path = os.path.join(TRUNK_DIR, f"{model_name}.weights.h5")
    if not os.path.isfile(path):
        available = sorted(f.split(".")[0] for f in os.listdir(TRUNK_DIR)) if os.path.isdir(TRUNK_DIR) else []
        raise ValueError(f"{model_name}: no distilled face trunk is shipped for this backbone "
                         f"(weights={TRUNK_WEIGHTS!r} exists for: {', '.join(available) or 'none'})")
    return path


def _register():
    from facezoo.models.weights import PRETRAINED, register_pretrained
    if TRUNK_WEIGHTS not in PRETRAINED:
        register_pretrained(TRUNK_WEIGHTS, trunk_weights_path)


_register()
