"""Perceptual features for SRGAN's content loss from one of our own face trunks.

SRGAN's paper compares VGG-19 features of the restored and the original image; ImageNet VGG weights cannot be
downloaded here, so the perceptual loss reads an intermediate layer of a shipped attribute model's trunk
instead -- a network that has learnt what distinguishes faces (hair, eyes, mouth) rather than ImageNet objects.

    from facezoo.models.gan.perceptual import trunk_feature_extractor
    features = trunk_feature_extractor("dmtl_celeba", layer="conv3_block2_out")   # [-1, 1] RGB -> features
    SRGAN(..., feature_extractor=features)

``recipes/train_srgan.py --feature-extractor trunk:dmtl_celeba:conv3_block2_out`` builds the same.
"""
from __future__ import annotations

from facezoo.errors import UsageError

DEFAULT_MODEL = "dmtl_celeba"
# Stride 8: an 8x8 grid of 128 channels on a 64x64 face -- parts of the face, not single pixels (the paper's
# VGG54 is deeper, but its images are larger and its pixel pre-training is longer).
DEFAULT_LAYER = "conv3_block2_out"
PREFIX = "trunk:"


def trunk_feature_extractor(model=DEFAULT_MODEL, layer: str = DEFAULT_LAYER):
    """A frozen Keras model: images of any size in [-1, 1] -> ``layer``'s activations of ``model``'s trunk.

    Args:
        model: a shipped DMTL attribute model's name (its Keras weights are read) or a loaded Keras DMTL model.
        layer: a layer of the trunk (e.g. ``conv2_block2_out``, ``conv3_block2_out``).
    """
    import keras

    from facezoo.models.dmtl import any_size_trunk
    if isinstance(model, str):
        import facezoo
        model = facezoo.load(model, backend="keras", fold_batchnorm=False).model
    if not hasattr(model, "dmtl_config"):
        raise UsageError(f"{getattr(model, 'name', model)!r} is not a DMTL attribute model; perceptual features "
                         "read the trunk of one (e.g. dmtl_celeba)")
    trunk = any_size_trunk(model)
    names = [lay.name for lay in trunk.layers]
    if layer not in names:
        outs = [n for n in names if n.endswith("_out")]
        raise UsageError(f"the {model.name} trunk has no layer {layer!r}; its block outputs: {', '.join(outs)}")
    features = keras.Model(trunk.inputs, trunk.get_layer(layer).output, name=f"{model.name}_{layer}")
    features.trainable = False
    return features


def parse_extractor(text: str):
    """``--feature-extractor``: a ``.keras`` path (returned as is) or ``trunk:MODEL[:LAYER]`` (a callable)."""
    if not text.startswith(PREFIX):
        return text
    parts = text[len(PREFIX):].split(":")
    if len(parts) > 2 or not parts[0]:
        raise UsageError(f"--feature-extractor {text!r}: expected trunk:MODEL or trunk:MODEL:LAYER")
    model, layer = parts[0], (parts[1] if len(parts) == 2 and parts[1] else DEFAULT_LAYER)
    return lambda: trunk_feature_extractor(model, layer)
