"""``FaceModel``: a loaded attribute model plus its card, turning face crops into named attributes.

``predict`` reads every input with ``facezoo.images.load_image``, builds the network input with
``facezoo.preprocessing.prepare_input`` from the card's preprocessing spec (the function training's
pipeline applies in two halves), runs the network in batches through one cached ``tf.function``
(``model.predict`` costs ~50 ms per call), and decodes each head with ``facezoo.models.heads``.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from facezoo.errors import UsageError
from facezoo.images import ImageError, describe, load_image
from facezoo.models.dmtl import confidence_name, heads_of
from facezoo.models.heads import decode_confidence, decode_head
from facezoo.preprocessing import prepare_input


class FaceModel:
    """A shipped attribute model ready for inference (``facezoo.load`` returns it for task ``attributes``).

    Attributes:
        model: the Keras model (outputs are logits keyed ``<dataset>__<attribute>``).
        card: its ``facezoo.zoo.ModelCard``.
        spec: the card's ``PreprocessSpec``.
    """

    def __init__(self, model, card):
        self.model = model
        self.card = card
        self.spec = card.spec
        self.input_size = self.spec.input_size
        self.heads = heads_of(model)
        self._detector = None  # the face check's detector, built on first use
        self._forward = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec([None, *self.spec.input_shape], tf.float32)],
            reduce_retracing=True)
        # Crops already at the input size (analyze's aligned faces): scaling inside the same graph as the
        # network, since eager scaling costs more than the network at batch 1.
        self._forward_crops = tf.function(
            lambda x: model(self.spec.normalize(x), training=False),
            input_signature=[tf.TensorSpec([None, *self.spec.input_size, 3], tf.uint8)],
            reduce_retracing=True)
        # One graph for every image size: eager preprocessing costs several ms per image.
        self._prepare = tf.function(lambda image: prepare_input(image, self.spec),
                                    input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])

    @classmethod
    def from_file(cls, path: str, card) -> "FaceModel":
        """The model in a checksum-verified ``.keras`` file with its card (what ``facezoo.load`` calls)."""
        from facezoo.models.weights import load_model_file
        return cls(load_model_file(path, card.name), card)

    def __repr__(self):
        return f"FaceModel({self.card.name!r}, input={self.input_size}, heads={len(self.heads)})"

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """One RGB image (uint8, or float in [0, 255]) -> the network's float input."""
        return self._prepare(tf.convert_to_tensor(np.asarray(image, np.float32))).numpy()

    def describe_crops(self, crops: np.ndarray) -> list[dict]:
        """Decoded attributes for a batch of uint8 crops already in the model's framing and input size."""
        batch = tf.convert_to_tensor(np.clip(np.rint(crops), 0, 255).astype(np.uint8)
                                     if np.asarray(crops).dtype != np.uint8 else np.asarray(crops))
        outputs = {k: v.numpy() for k, v in self._forward_crops(batch).items()}
        return [self._decode_row(outputs, row) for row in range(len(crops))]

    def logits(self, batch: np.ndarray) -> dict:
        """Raw outputs for a preprocessed batch."""
        return {k: v.numpy() for k, v in self._forward(tf.convert_to_tensor(batch, tf.float32)).items()}

    def predict(self, images, *, batch_size: int = 32, errors: str = "raise", check_face: bool = True):
        """Describes one face crop or a list of them.

        Args:
            images: a path, bytes, a numpy array, a PIL image, or a list of these.
            batch_size: images per forward pass (a positive int).
            errors: ``"raise"`` stops at the first bad input with an ``ImageError`` naming it;
                ``"collect"`` returns ``{"input": ..., "error": "..."}`` for bad items and carries on.
            check_face: also run the face detector on each crop and report ``face_score`` (its best score, 0
                when none) and ``face_found``: answers for a crop without a detectable face (a chart, a
                landscape) are still given, but marked, so they do not mislead. For photos use
                ``facezoo.analyze``, which finds and aligns the faces itself.

        Returns:
            One dict per image (a single dict for a single input) — JSON-serialisable:
            ``{"input": name, "model": name, "attributes": {attribute: {...}}}`` (plus ``face_score`` and
            ``face_found`` with ``check_face``); binary attributes
            give ``probability`` and ``present`` (probability >= the card's threshold), nominal ones
            ``label`` and ``probabilities``, ordinal ones one ``value`` (e.g. years, the expected value of
            the ordinal distribution; plus ``probabilities`` for at most 10 classes); every head adds
            ``confidence`` and ``abstain`` (confidence below
            the card's ``abstain_below``).
        """
        if errors not in ("raise", "collect"):
            raise UsageError(f"errors must be 'raise' or 'collect', got {errors!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise UsageError(f"batch_size must be a positive int, got {batch_size!r}")
        single = not isinstance(images, (list, tuple))
        items = [images] if single else list(images)
        results: list = [None] * len(items)
        good, arrays, decoded = [], [], []
        for i, item in enumerate(items):
            try:
                image = load_image(item)
                arrays.append(self.preprocess(image))
                decoded.append(image)
                good.append(i)
            except ImageError as e:
                if errors == "raise":
                    raise
                results[i] = {"input": describe(item), "error": str(e)}
        for start in range(0, len(good), batch_size):
            idx = good[start:start + batch_size]
            outputs = self.logits(np.stack(arrays[start:start + batch_size]))
            faces = self._face_scores(decoded[start:start + batch_size]) if check_face else None
            for row, i in enumerate(idx):
                results[i] = {"input": describe(items[i]), "model": self.card.name,
                              "attributes": self._decode_row(outputs, row)}
                if faces is not None:
                    results[i]["face_score"] = round(faces[row], 4)
                    results[i]["face_found"] = faces[row] > 0
        return results[0] if single else results

    def _face_scores(self, images) -> list[float]:
        """The shipped detector's best face score on each crop (0.0: no face found)."""
        if self._detector is None:
            from facezoo.face.detect import get_detector
            self._detector = get_detector()
        return [max((f.score for f in found), default=0.0)
                for found in self._detector.detect(list(images), min_face=0)]

    def _decode_row(self, outputs, row):
        out = {}
        for _ds, spec, name in self.heads:
            attr = spec.attribute
            dec = decode_head(attr, outputs[name][row:row + 1])
            probs = dec["probabilities"][0]
            entry: dict = {}
            if attr.kind == "binary":
                p = float(dec["positive"][0])
                entry = {"probability": round(p, 4), "present": bool(p >= self.card.thresholds.get(attr.name, 0.5))}
            elif attr.kind == "ordinal":
                # One answer: the expected value (the rank decoded by CORAL can differ from it).
                entry["value"] = round(float(dec["value"][0]), 2)
                if attr.num_classes <= 10:
                    entry["probabilities"] = {c: round(float(p), 4) for c, p in zip(attr.classes, probs)}
            else:
                entry["label"] = attr.classes[int(dec["index"][0])]
                entry["probabilities"] = {c: round(float(p), 4) for c, p in zip(attr.classes, probs)}
            conf_key = confidence_name(name)
            if conf_key in outputs:
                c = float(decode_confidence(outputs[conf_key][row])[0])
                entry["confidence"] = round(c, 4)
                entry["abstain"] = bool(c < self.card.abstain_below)
            out[attr.name] = entry
        return out
