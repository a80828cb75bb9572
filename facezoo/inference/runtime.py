"""What every attribute runtime shares, whatever runs the network: ``predict``, batching, decoding.

``AttributeRuntime`` turns face crops into named attributes: it reads inputs with ``facezoo.images.load_image``,
asks its subclass for the network input (``preprocess``, ``normalize``) and the logits (``logits``), and decodes
every head with ``facezoo.decoding`` (numpy). ``facezoo.inference.face_model.FaceModel`` runs the Keras model
through TensorFlow; ``facezoo.backends.ExportedModel`` runs an exported graph (ONNX Runtime, LiteRT, OpenVINO)
with numpy preprocessing and needs no TensorFlow. Both return the same structure.

The head list comes from the card (``architecture.config.datasets``), so no Keras model is needed to decode.
"""
from __future__ import annotations

import collections

import numpy as np

from facezoo.attributes import Attribute
from facezoo.decoding import decode_confidence, decode_head
from facezoo.errors import UsageError
from facezoo.images import ImageError, describe, load_image

# Working size of predict's face check on crops (the photo path searches at 160).
FACE_CHECK_SIZE = 96

# The expression API's per-face scores (the VGG course's keys). FER-2013 has no contempt class, so a model
# trained on it gives ``contempt`` exactly 0.0 and the other seven scores are its class probabilities.
API_KEYS = ("anger", "contempt", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
# Class names of the label spaces in facezoo.attributes -> the API's keys.
CLASS_TO_KEY = {"angry": "anger", "anger": "anger", "contempt": "contempt", "disgust": "disgust", "fear": "fear",
                "happy": "happiness", "neutral": "neutral", "sad": "sadness", "sadness": "sadness",
                "surprise": "surprise"}

Head = collections.namedtuple("Head", "attribute")  # what decoding reads of a ``facezoo.models.dmtl.HeadSpec``


def api_scores(probabilities: dict) -> dict:
    """``{class: probability}`` of an expression head -> the eight API scores (absent classes score 0.0)."""
    scores = dict.fromkeys(API_KEYS, 0.0)
    for name, p in probabilities.items():
        scores[CLASS_TO_KEY[name]] += float(p)
    return scores


def output_name(dataset: str, attribute: str) -> str:
    """Network output key of a head (``facezoo.models.dmtl.output_name``)."""
    return f"{dataset}__{attribute}"


def confidence_name(head_output: str) -> str:
    """Network output key of a head's self-evaluation logit (``facezoo.models.dmtl.confidence_name``)."""
    return f"{head_output}_conf"


def heads_from_card(card) -> list:
    """``(dataset, head, output_name)`` of every head, from the card's DMTL config (like ``heads_of(model)``)."""
    config = card.architecture.get("config") or {}
    heads = []
    for d in config.get("datasets") or []:
        for h in d["heads"]:
            attribute = Attribute.from_dict(h["attribute"])
            heads.append((d["name"], Head(attribute), output_name(d["name"], attribute.name)))
    if not heads:
        from facezoo.errors import ModelFileError
        raise ModelFileError(f"{card.name}: the card's architecture records no heads (architecture.config.datasets)")
    return heads


class AttributeRuntime:
    """``predict`` / ``describe_crops`` on top of a subclass's ``preprocess``, ``normalize`` and ``logits``.

    Attributes:
        card: the model's ``facezoo.zoo.ModelCard``; ``spec`` its ``PreprocessSpec``.
        heads: ``(dataset, head, output_name)`` per head (``head.attribute`` is the ``Attribute``).
        backend, precision: what runs the network (``"keras"``/``"fp32"`` for ``FaceModel``).
        align_engine: ``facezoo.face.align.align_to_spec``'s engine ``analyze`` uses for this model: ``numpy``
            (Pillow's C warp; the TensorFlow engine gives the same crops, 3-5x slower).
        flip_test: the card's ``architecture["flip_test"]`` (or ``facezoo.load(..., flip_test=)``): every output
            is the mean of its logits on each face and on its mirror image (``facezoo.optimize.flip_test_network``
            on the Keras backend; ``ExportedModel`` appends the mirror images to the batch).
    """

    backend = "keras"
    precision = "fp32"
    align_engine = "numpy"

    def __init__(self, card, heads=None):
        self.card = card
        self.spec = card.spec
        self.input_size = self.spec.input_size
        self.heads = heads if heads is not None else heads_from_card(card)
        self.flip_test = bool(card.architecture.get("flip_test", False))
        self._detector = None  # the face check's detector, built on first use

    # --- what a backend provides
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """One RGB image (uint8, or float in [0, 255]) -> the network's float input."""
        raise NotImplementedError

    def normalize(self, crops: np.ndarray) -> np.ndarray:
        """uint8 crops already at the input size -> the network input (``PreprocessSpec.normalize``)."""
        raise NotImplementedError

    def logits(self, batch: np.ndarray) -> dict:
        """Raw outputs ``{output name: array}`` for a preprocessed batch."""
        raise NotImplementedError

    def face_detector(self):
        """The detector of ``predict``'s face check (built on first use)."""
        raise NotImplementedError

    # --- shared
    def describe_crops(self, crops: np.ndarray) -> list[dict]:
        """Decoded attributes for a batch of uint8 crops already in the model's framing and input size."""
        outputs = self.logits(self.normalize(np.asarray(crops)))
        return self._decode_rows(outputs, len(crops))

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
            the card's ``abstain_below``). Expression models add ``scores`` (the eight API keys).
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
            described = self._decode_rows(outputs, len(idx))
            for row, i in enumerate(idx):
                results[i] = {"input": describe(items[i]), "model": self.card.name,
                              "attributes": described[row]}
                if faces is not None:
                    results[i]["face_score"] = round(faces[row], 4)
                    results[i]["face_found"] = faces[row] > 0
        return results[0] if single else results

    def _face_scores(self, images) -> list[float]:
        """The shipped detector's best face score on each crop (0.0: no face found), searched at
        ``FACE_CHECK_SIZE`` working pixels, smaller crops enlarged to it: a crop's face fills most of it, so a
        small canvas finds it at a third of the cost of the photo path's (``benchmarks/face_check.py``)."""
        if self._detector is None:
            self._detector = self.face_detector().with_working_size(FACE_CHECK_SIZE, upscale=True)
        return [max((f.score for f in found), default=0.0)
                for found in self._detector.detect(list(images), min_face=0)]

    def _decode_row(self, outputs, row):
        """The decoded attributes of one row of a batch's outputs."""
        return self._decode_rows({k: v[row:row + 1] for k, v in outputs.items()}, 1)[0]

    def _decode_rows(self, outputs, n: int) -> list[dict]:
        """The decoded attributes of the first ``n`` rows: each head decoded once for the whole batch."""
        rows: list[dict] = [{} for _ in range(n)]
        for _ds, spec, name in self.heads:
            attr = spec.attribute
            dec = decode_head(attr, np.asarray(outputs[name])[:n])
            probs = dec["probabilities"].tolist()
            conf_key = confidence_name(name)
            conf = decode_confidence(np.asarray(outputs[conf_key])[:n]).tolist() if conf_key in outputs else None
            if attr.kind == "binary":
                threshold = self.card.thresholds.get(attr.name, 0.5)
                positive = dec["positive"].tolist()
            elif attr.kind == "ordinal":
                values = dec["value"].tolist()
            else:
                index = dec["index"].tolist()
            for row in range(n):
                if attr.kind == "binary":
                    p = positive[row]
                    entry = {"probability": round(p, 4), "present": bool(p >= threshold)}
                elif attr.kind == "ordinal":
                    # One answer: the expected value (the rank decoded by CORAL can differ from it).
                    entry = {"value": round(values[row], 2)}
                    if attr.num_classes <= 10:
                        entry["probabilities"] = {c: round(p, 4) for c, p in zip(attr.classes, probs[row])}
                else:
                    entry = {"label": attr.classes[index[row]],
                             "probabilities": {c: round(p, 4) for c, p in zip(attr.classes, probs[row])}}
                if conf is not None:
                    entry["confidence"] = round(conf[row], 4)
                    entry["abstain"] = bool(conf[row] < self.card.abstain_below)
                rows[row][attr.name] = entry
        if self.card.task == "expression" or any(
                spec.attribute.name == "expression" for _ds, spec, _name in self.heads):
            for out in rows:
                if "expression" in out:
                    out["expression"]["scores"] = api_scores(out["expression"]["probabilities"])
        return rows
