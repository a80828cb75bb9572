"""``ExportedModel``: an attribute or expression model whose network is an exported graph (no TensorFlow);
``ExportedFaceEmbedder``: the same for a face-verification model."""
from __future__ import annotations

import numpy as np

from facezoo.errors import UsageError
from facezoo.inference.embedding import FaceEmbedder
from facezoo.inference.runtime import AttributeRuntime
from facezoo.preprocessing import normalize_numpy, prepare_input_numpy


class ExportedModel(AttributeRuntime):
    """What ``facezoo.load`` returns for a non-Keras backend: ``FaceModel``'s ``predict``, preprocessing in numpy.

    Preprocessing (``facezoo.preprocessing.prepare_input_numpy``) reproduces ``prepare_input``; alignment in
    ``analyze`` uses ``align_to_spec(engine="numpy")`` as for every runtime; decoding is the same numpy code.
    fp32 answers equal the Keras backend's to ~1e-5 in probability (tests/backends).

    Attributes:
        backend, precision: what runs the network; path: the graph file; runner: ``runner(batch) -> outputs``.
        flip_test: the graphs are built without it; when on (the card's ``architecture["flip_test"]`` or
            ``facezoo.load(..., flip_test=)``), each batch runs with its mirror images appended, one call of
            ``runner``, and every output is the mean of the two halves: the same answers as the Keras
            backend's in-network flip (``facezoo.optimize.flip_test_network``).
    """

    def __init__(self, card, runner, *, backend: str, precision: str, path: str):
        super().__init__(card)
        self.runner, self.backend, self.precision, self.path = runner, backend, precision, path

    def __repr__(self):
        return (f"ExportedModel({self.card.name!r}, backend={self.backend!r}, precision={self.precision!r}, "
                f"input={self.input_size}, heads={len(self.heads)})")

    @property
    def model(self):
        raise UsageError(f"{self.card.name} runs on {self.backend} ({self.precision}), which has no Keras model; "
                         f"load it with facezoo.load({self.card.name!r}, backend=\"keras\") for the Keras model")

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return prepare_input_numpy(image, self.spec)

    def normalize(self, crops: np.ndarray) -> np.ndarray:
        return normalize_numpy(crops, self.spec)

    def logits(self, batch: np.ndarray) -> dict:
        batch = np.asarray(batch, np.float32)
        if not self.flip_test:
            return self.runner(batch)
        n = len(batch)
        both = self.runner(np.concatenate([batch, batch[:, :, ::-1]]))
        return {k: (np.asarray(v[:n]) + np.asarray(v[n:])) / 2 for k, v in both.items()}

    def face_detector(self):
        from facezoo.zoo import load
        return load("retinaface_mnet025", backend=self.backend, precision="fp32")


class ExportedFaceEmbedder(FaceEmbedder):
    """``FaceEmbedder`` (``embed``, ``verify``, ``FaceDB``) with its network an exported graph: what ``facezoo.load``
    returns for a verification card on a non-Keras backend. Preprocessing and alignment are numpy (the Keras
    embedder's alignment is the same numpy warp); fp32 embeddings equal the Keras ones to ~1e-6 (tests/backends).
    """

    def __init__(self, card, runner, *, backend: str, precision: str, path: str, directory: str):
        self.runner, self.backend, self.precision, self.path = runner, backend, precision, path
        probe = runner(np.zeros((1, *card.spec.input_shape), np.float32))
        if len(probe) != 1 or np.ndim(next(iter(probe.values()))) != 2:
            raise UsageError(f"{card.name}: the graph {path} must have one (N, dim) output, it has "
                             f"{ {k: np.shape(v) for k, v in probe.items()} }")
        self._output = next(iter(probe))
        self._setup(card, int(np.shape(probe[self._output])[1]), self.load_pair_head(directory, card), None)

    def __repr__(self):
        return (f"ExportedFaceEmbedder({self.card.name!r}, backend={self.backend!r}, input={self.input_size}, "
                f"dim={self.dim})")

    @property
    def model(self):
        raise UsageError(f"{self.card.name} runs on {self.backend}, which has no Keras model; load it with "
                         f"facezoo.load({self.card.name!r}, backend=\"keras\") for the Keras model")

    @property
    def detector(self):
        if self._detector is None:
            from facezoo.zoo import load
            self._detector = load("retinaface_mnet025", backend=self.backend, precision="fp32")
        return self._detector

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        return prepare_input_numpy(np.asarray(image), self.spec)

    def normalize(self, crops: np.ndarray) -> np.ndarray:
        return normalize_numpy(np.asarray(crops, np.float32), self.spec)

    def network(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.runner(np.asarray(batch, np.float32))[self._output], np.float32)
