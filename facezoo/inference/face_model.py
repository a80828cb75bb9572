"""``FaceModel``: a loaded Keras attribute model plus its card, turning face crops into named attributes.

``predict`` (``facezoo.inference.runtime.AttributeRuntime``) reads every input with
``facezoo.images.load_image``, builds the network input with ``facezoo.preprocessing.prepare_input`` from the
card's preprocessing spec (the function training's pipeline applies in two halves), runs the network in batches
through one cached ``tf.function`` (``model.predict`` costs ~50 ms per call), and decodes each head with
``facezoo.decoding``. ``facezoo.load(name, backend="keras")`` returns it; the other backends return a
``facezoo.backends.ExportedModel`` with the same ``predict``.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from facezoo.inference.runtime import AttributeRuntime
from facezoo.models.dmtl import heads_of
from facezoo.preprocessing import prepare_input


class FaceModel(AttributeRuntime):
    """A shipped attribute model ready for inference (``facezoo.load(..., backend="keras")`` for task ``attributes``).

    Attributes:
        model: the Keras model as shipped (outputs are logits keyed ``<dataset>__<attribute>``); train or
            inspect this one.
        inference_model: what ``predict`` runs: by default ``facezoo.optimize.fold_batch_norm(model)`` (every
            BatchNormalization merged into its convolution: the same outputs within ~1e-5, 7-25% less
            batch-1 time; made once at load, ~1 s for ``dmtl_face``), or ``model`` itself with
            ``fold_batchnorm=False``; with ``flip_test``, wrapped by ``facezoo.optimize.flip_test_network``.
            Weights changed on ``model`` later do not reach it.
        flip_test: every output is the mean of its logits on the face and on its mirror image (the card's
            ``architecture["flip_test"]``, which its metrics were measured with, unless ``flip_test=`` is
            given at construction); twice the network work per face.
        card: its ``facezoo.zoo.ModelCard``.
        spec: the card's ``PreprocessSpec``.
    """

    def __init__(self, model, card, *, fold_batchnorm: bool = True, flip_test: bool | None = None):
        from facezoo.optimize.fold import inference_network
        super().__init__(card, heads=heads_of(model))
        self.model = model
        if flip_test is not None:
            self.flip_test = bool(flip_test)
        self.inference_model = network = inference_network(model, fold_batchnorm, self.flip_test)
        self._forward = tf.function(
            lambda x: network(x, training=False),
            input_signature=[tf.TensorSpec([None, *self.spec.input_shape], tf.float32)],
            reduce_retracing=True)
        # Crops already at the input size (analyze's aligned faces): scaling inside the same graph as the
        # network, since eager scaling costs more than the network at batch 1.
        self._forward_crops = tf.function(
            lambda x: network(self.spec.normalize(x), training=False),
            input_signature=[tf.TensorSpec([None, *self.spec.input_size, 3], tf.uint8)],
            reduce_retracing=True)
        # One graph for every image size: eager preprocessing costs several ms per image.
        self._prepare = tf.function(lambda image: prepare_input(image, self.spec),
                                    input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])

    @classmethod
    def from_file(cls, path: str, card, *, fold_batchnorm: bool = True, flip_test: bool | None = None) -> "FaceModel":
        """The model in a checksum-verified ``.keras`` file with its card (what ``facezoo.load`` calls)."""
        from facezoo.models.weights import load_model_file
        return cls(load_model_file(path, card.name), card, fold_batchnorm=fold_batchnorm, flip_test=flip_test)

    def __repr__(self):
        return f"FaceModel({self.card.name!r}, input={self.input_size}, heads={len(self.heads)})"

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """One RGB image (uint8, or float in [0, 255]) -> the network's float input."""
        return self._prepare(tf.convert_to_tensor(np.asarray(image, np.float32))).numpy()

    def normalize(self, crops: np.ndarray) -> np.ndarray:
        return self.spec.normalize(tf.convert_to_tensor(np.asarray(crops, np.float32))).numpy()

    def describe_crops(self, crops: np.ndarray) -> list[dict]:
        """Decoded attributes for a batch of uint8 crops already in the model's framing and input size (scaled
        inside the cached graph: eager scaling costs more than the network at batch 1)."""
        crops = np.asarray(crops)
        if crops.dtype != np.uint8:
            crops = np.clip(np.rint(crops), 0, 255).astype(np.uint8)
        outputs = {k: v.numpy() for k, v in self._forward_crops(tf.convert_to_tensor(crops)).items()}
        return self._decode_rows(outputs, len(crops))

    def logits(self, batch: np.ndarray) -> dict:
        """Raw outputs for a preprocessed batch."""
        return {k: v.numpy() for k, v in self._forward(tf.convert_to_tensor(batch, tf.float32)).items()}

    def face_detector(self):
        from facezoo.face.detect import get_detector
        return get_detector(backend="keras")
