"""``ServingModule``: a shipped model with its preprocessing and its decoding inside the graph.

A TF Serving client sends image bytes and gets answers — probabilities, years, labels, confidences —
not logits. The module is built from the model card: the network input comes from
``facezoo.preprocessing.prepare_input`` with the card's ``PreprocessSpec`` (the function
``FaceModel.predict`` and the training pipeline use), the decisions use the card's thresholds and
``abstain_below``, and each head is decoded as ``facezoo.models.heads.decode_head`` does, in TF ops.

Signatures (each takes a batch and returns one tensor per output name below):

* ``serving_default`` — ``image_bytes``: ``tf.string [None]``, encoded JPEG, PNG, GIF (first frame) or
  BMP files, decoded in the graph (grey images become RGB; alpha is composited onto white, as
  ``facezoo.images.load_image`` does), then cropped to the input's aspect, resized and scaled.
* ``image_uint8`` — ``images``: ``tf.uint8 [None, None, None, 3]``, a batch of RGB face crops of one
  size (any size: cropped and resized in the graph, so a client need not know the model's input).
* ``preprocessed`` — ``images``: ``tf.float32 [None, H, W, C]``, the network input itself.

Outputs, per head (``<attr>`` is the attribute name; ``<dataset>__<attr>`` if two data sets share one):
binary ``<attr>_probability`` (float) and ``<attr>_present`` (bool, probability >= the card's
threshold); nominal ``<attr>_label`` (string), ``<attr>_index`` (int64) and ``<attr>_probabilities``
(float [K], in the order of the card's classes); ordinal ``<attr>_value`` (float, the expected value,
e.g. years) plus ``<attr>_probabilities`` when there are at most 10 classes (as ``predict``); and with
self-evaluation ``<attr>_confidence`` (float) and ``<attr>_abstain`` (bool).

What differs from ``FaceModel.predict``: the graph decodes with TensorFlow, not PIL, so EXIF
orientation is not applied (send upright images), 16-bit PNGs are reduced to 8 bits by TF's rule, and
JPEGs larger than 4096 pixels a side are not decoded at reduced size first. For 8-bit JPEG and PNG
files the pixels are the same and so are the outputs (tests check 1e-4).
"""
from __future__ import annotations

import tensorflow as tf

from facezoo.models.dmtl import confidence_name, heads_of
from facezoo.preprocessing import prepare_input

SIGNATURES = ("serving_default", "image_uint8", "preprocessed")
MAX_LISTED_CLASSES = 10  # ordinal heads list their class probabilities up to this many classes, as predict


def decode_image_bytes(data):
    """One encoded image (scalar ``tf.string``) -> RGB ``uint8 [H, W, 3]``, alpha composited onto white."""
    # JPEG with the accurate integer DCT, as PIL decodes it (TF's default, INTEGER_FAST, differs by up to 7 levels).
    image = tf.cond(
        tf.io.is_jpeg(data),
        lambda: tf.io.decode_jpeg(data, channels=0, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(data, channels=0, expand_animations=False, dtype=tf.uint8))
    channels = tf.shape(image)[-1]
    colour = tf.cond(channels < 3, lambda: tf.repeat(image[..., :1], 3, axis=-1), lambda: image[..., :3])
    has_alpha = tf.logical_or(tf.equal(channels, 2), tf.equal(channels, 4))

    def on_white():
        alpha = tf.cast(image[..., -1:], tf.int32)
        mixed = (tf.cast(colour, tf.int32) * alpha + 255 * (255 - alpha) + 127) // 255
        return tf.cast(mixed, tf.uint8)

    return tf.cond(has_alpha, on_white, lambda: colour)


def output_names(model) -> dict[str, str]:
    """Model output key (``<dataset>__<attr>``) -> the prefix of its serving outputs."""
    heads = heads_of(model)
    counts: dict[str, int] = {}
    for _ds, spec, _name in heads:
        counts[spec.attribute.name] = counts.get(spec.attribute.name, 0) + 1
    return {name: (spec.attribute.name if counts[spec.attribute.name] == 1 else name) for _ds, spec, name in heads}


def decode_outputs(logits: dict, model, card) -> dict:
    """Raw model outputs (a dict of logits) -> the named, decoded serving outputs (TF ops)."""
    prefixes = output_names(model)
    out = {}
    for _ds, spec, name in heads_of(model):
        attr, prefix = spec.attribute, prefixes[name]
        z = tf.cast(logits[name], tf.float32)
        if attr.kind == "binary":
            p = tf.sigmoid(tf.reshape(z, [-1]))
            out[f"{prefix}_probability"] = p
            out[f"{prefix}_present"] = p >= float(card.thresholds.get(attr.name, 0.5))
        elif attr.kind == "nominal":
            p = tf.nn.softmax(z, axis=-1)
            index = tf.argmax(p, axis=-1)
            out[f"{prefix}_probabilities"] = p
            out[f"{prefix}_index"] = index
            out[f"{prefix}_label"] = tf.gather(tf.constant(list(attr.classes)), index)
        else:
            # CORAL: P(y > k) -> class probabilities (differences, clipped, renormalised) -> expected value.
            s = tf.sigmoid(z)
            ones, zeros = tf.ones_like(s[:, :1]), tf.zeros_like(s[:, :1])
            p = tf.nn.relu(tf.concat([ones, s], -1) - tf.concat([s, zeros], -1))
            p = p / tf.maximum(tf.reduce_sum(p, -1, keepdims=True), 1e-12)
            values = attr.values if attr.values is not None else range(attr.num_classes)
            out[f"{prefix}_value"] = tf.linalg.matvec(p, tf.constant([float(v) for v in values], tf.float32))
            if attr.num_classes <= MAX_LISTED_CLASSES:
                out[f"{prefix}_probabilities"] = p
        conf = confidence_name(name)
        if conf in logits:
            c = tf.sigmoid(tf.reshape(tf.cast(logits[conf], tf.float32), [-1]))
            out[f"{prefix}_confidence"] = c
            out[f"{prefix}_abstain"] = c < float(card.abstain_below)
    return out


class ServingModule(tf.Module):
    """The signatures of the module docstring around one Keras model and its card.

    Args:
        model: a DMTL Keras model (``FaceModel.model``, or its ``fold_batch_norm`` copy).
        card: the model's ``ModelCard`` (preprocessing spec, thresholds, abstain band).
    """

    def __init__(self, model, card):
        super().__init__(name="facezoo_serving")
        self.model = model
        self._card = card
        self._spec = card.spec
        h, w = self._spec.input_size
        self.preprocessed = tf.function(
            self._preprocessed, input_signature=[tf.TensorSpec([None, h, w, self._spec.channels], tf.float32,
                                                               name="images")])
        self.image_uint8 = tf.function(
            self._image_uint8, input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
        self.image_bytes = tf.function(
            self._image_bytes, input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])

    def _preprocessed(self, images):
        return decode_outputs(self.model(images, training=False), self.model, self._card)

    def _image_uint8(self, images):
        return self._preprocessed(prepare_input(images, self._spec))

    def _image_bytes(self, image_bytes):
        h, w = self._spec.input_size
        inputs = tf.map_fn(lambda b: prepare_input(decode_image_bytes(b), self._spec), image_bytes,
                           fn_output_signature=tf.TensorSpec([h, w, self._spec.channels], tf.float32))
        return self._preprocessed(inputs)

    def signatures(self) -> dict:
        """Signature name -> concrete function, for ``tf.saved_model.save``."""
        return {"serving_default": self.image_bytes.get_concrete_function(),
                "image_uint8": self.image_uint8.get_concrete_function(),
                "preprocessed": self.preprocessed.get_concrete_function()}
