"""``FaceEmbedder``: a face-verification model (card task ``verification``) turning faces into embeddings.

    import facezoo
    facezoo.verify("a.jpg", "b.jpg")          # {'distance': 0.71, 'threshold': 0.93, 'same': True, 'faces': [...]}
    model = facezoo.load("verify_face")
    vectors = model.embed(["a.jpg", "b.jpg"])  # float32 (2, 128), each of unit length

The network maps a face crop in the card's framing (``PreprocessSpec.framing``) to an L2-normalised
embedding; two faces are the same person when the Euclidean distance of their embeddings is at most the
card's ``thresholds["distance"]``, a threshold chosen by the evaluator on pairs kept apart from the
reported ones. Photos go through the ``analyze`` path — the shipped RetinaFace detector, then
``facezoo.face.align.align_to_spec`` onto the framing — and crops already in the framing go straight in
(``detect=False``; ``"auto"`` decides per image: an image of exactly the input size is taken as a crop).
A model folder may also hold ``pair_head.npz``, the binary head of ``facezoo.inference.pair_head``.
"""
from __future__ import annotations

import os

import numpy as np

from facezoo.errors import ChecksumError, ImageError, ModelFileError, UsageError
from facezoo.images import describe, load_image
from facezoo.inference.vectors import as_embeddings, euclidean  # noqa: F401  (re-exported)
from facezoo.preprocessing import FaceFraming

PAIR_HEAD_FILE = "pair_head.npz"
EMBEDDING_DIM = 128

# The usual 112x112 face-recognition template (five landmarks of ArcFace/InsightFace's crops, here as
# fractions of the input): tight on the face, eyes at 46% of the height. A model's card records the framing
# its training crops had; this one is the default of recipes/train_verify.py.
RECOGNITION_112 = FaceFraming(
    "recognition_112",
    ((0.3464, 0.4660), (0.6610, 0.4643), (0.5047, 0.6450), (0.3754, 0.8292), (0.6360, 0.8277)),
    "5-point face-recognition template of 112x112 crops (38.29,51.70 73.53,51.50 56.03,71.74 41.55,92.37 "
    "70.73,92.20 pixel indices of 112x112)")


def framing_spec(name: str, size):
    """The input spec of a verification model whose crops use framing ``name`` at ``size`` (H, W).

    ``recognition_112``: the ArcFace template, pixels scaled to [-1, 1]; ``facezoo_face``: the distilled face
    trunk's framing and EfficientNet-Lite scaling (``facezoo.models.face_trunk.TRUNK_SPEC``).
    """
    import dataclasses

    from facezoo.preprocessing import PreprocessSpec
    if name == "recognition_112":
        return PreprocessSpec(tuple(size), framing=RECOGNITION_112)
    if name == "facezoo_face":
        from facezoo.models.face_trunk import TRUNK_SPEC
        return dataclasses.replace(TRUNK_SPEC, input_size=tuple(size))
    raise UsageError(f"unknown face framing {name!r}; choose recognition_112 or facezoo_face")


FRAMINGS = ("recognition_112", "facezoo_face")


class NoFaceError(ImageError):
    """A photo given to ``embed``/``verify`` has no detectable face."""


def _check_detect(detect):
    if detect not in (True, False, "auto"):
        raise UsageError(f"detect must be True, False or 'auto', got {detect!r}")


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive int, got {batch_size!r}")


class FaceEmbedder:
    """A loaded verification model plus its card (``facezoo.load`` returns it for task ``verification``).

    Attributes:
        model: the Keras model as shipped, (N, H, W, 3) network input -> (N, dim) unit-length embeddings.
        inference_model: what ``embed`` runs: ``facezoo.optimize.fold_batch_norm(model)`` by default (the same
            embeddings within ~1e-6, ~30% less batch-1 time, made once at load), ``model`` with
            ``fold_batchnorm=False``.
        card: its ``facezoo.zoo.ModelCard``; ``card.thresholds["distance"]`` is the same-person threshold.
        spec: the card's ``PreprocessSpec`` (its ``framing`` says where the landmarks go).
        pair_head: the optional ``PairClassifier`` shipped beside the weights, or None.
        flip_test: embed each face and its mirror image and keep their normalised mean (the card's
            ``architecture["flip_test"]``, which its threshold was chosen with; settable). Twice the network
            work per face, in one batch; embeddings stored by a ``FaceDB`` are comparable only under one setting.
    """

    def __init__(self, model, card, pair_head=None, detector=None, *, fold_batchnorm: bool = True,
                 flip_test: bool | None = None):
        import tensorflow as tf

        from facezoo.optimize.fold import inference_network
        from facezoo.preprocessing import prepare_input
        shape = tuple(model.output_shape) if not isinstance(model.output_shape, dict) else ()
        if len(shape) != 2 or shape[1] is None:
            raise ModelFileError(f"{card.name}: a verification model must output (N, dim) embeddings, "
                                 f"its output shape is {model.output_shape}")
        self._setup(card, int(shape[1]), pair_head, detector)
        if flip_test is not None:
            self.flip_test = bool(flip_test)
        self.model = model
        self.inference_model = network = inference_network(model, fold_batchnorm)
        self._forward = tf.function(
            lambda x: network(x, training=False),
            input_signature=[tf.TensorSpec([None, *self.spec.input_shape], tf.float32)], reduce_retracing=True)
        self._prepare = tf.function(lambda image: prepare_input(image, self.spec),
                                    input_signature=[tf.TensorSpec([None, None, 3], tf.float32)])

    def _setup(self, card, dim: int, pair_head, detector):
        self.card = card
        self.spec = card.spec
        self.input_size = self.spec.input_size
        self.dim = dim
        self.pair_head = pair_head
        self._detector = detector
        self.flip_test = bool(card.architecture.get("flip_test", False))

    @staticmethod
    def load_pair_head(directory: str, card):
        """The ``pair_head.npz`` listed on ``card`` (sha256 checked), or None when the card lists none."""
        from facezoo.files import sha256_of
        from facezoo.inference.pair_head import PairClassifier
        if PAIR_HEAD_FILE not in card.files:
            return None
        head_path = os.path.join(os.fspath(directory), PAIR_HEAD_FILE)
        if not os.path.isfile(head_path):
            raise ModelFileError(f"{card.name}: {head_path} is listed on the card but missing; reinstall facezoo")
        if sha256_of(head_path) != card.files[PAIR_HEAD_FILE]:
            raise ChecksumError(f"{card.name}: sha256 of {head_path} differs from the card's (tampered or "
                                "corrupt file); reinstall facezoo")
        return PairClassifier.load(head_path)

    @classmethod
    def from_file(cls, path: str, card, *, fold_batchnorm: bool = True,
                  flip_test: bool | None = None) -> "FaceEmbedder":
        """The model in a checksum-verified ``.keras`` file with its card (what ``facezoo.load`` calls); a
        ``pair_head.npz`` listed on the card is checked against its sha256 and loaded too."""
        from facezoo.models.weights import load_model_file
        model = load_model_file(path, card.name)
        head = cls.load_pair_head(os.path.dirname(os.fspath(path)), card)
        return cls(model, card, head, fold_batchnorm=fold_batchnorm, flip_test=flip_test)

    def __repr__(self):
        return f"FaceEmbedder({self.card.name!r}, input={self.input_size}, dim={self.dim})"

    @property
    def threshold(self) -> float:
        """The card's same-person distance threshold."""
        if "distance" not in self.card.thresholds:
            raise ModelFileError(f"{self.card.name}: the card has no thresholds['distance']; package the model "
                                 "with recipes/ship_verify.py")
        return float(self.card.thresholds["distance"])

    @property
    def identity(self) -> dict:
        """What a stored embedding belongs to: model name, weights sha256, embedding size."""
        return {"model": self.card.name, "sha256": self.card.sha256, "dim": self.dim}

    @property
    def detector(self):
        """The face detector of the ``detect`` path (the shipped RetinaFace, checksum-verified), built on first use."""
        if self._detector is None:
            from facezoo.zoo import load
            self._detector = load("retinaface_mnet025")
        return self._detector

    # ------------------------------------------------------------------ crops -> embeddings
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """One RGB image (uint8, or float in [0, 255]) -> the network's float input (centre-fitted, no detection)."""
        import tensorflow as tf
        return self._prepare(tf.convert_to_tensor(np.asarray(image, np.float32))).numpy()

    def normalize(self, crops: np.ndarray) -> np.ndarray:
        """uint8 / float crops already at the input size -> the network's float input (the card's scaling)."""
        import tensorflow as tf
        return self.spec.normalize(tf.convert_to_tensor(np.asarray(crops, np.float32))).numpy()

    def network(self, batch: np.ndarray) -> np.ndarray:
        """One forward pass: (N, H, W, C) network inputs -> (N, dim) embeddings."""
        import tensorflow as tf
        return self._forward(tf.convert_to_tensor(batch)).numpy()

    def embed_network_inputs(self, batch, batch_size: int = 64) -> np.ndarray:
        """Embeddings of already preprocessed network inputs (N, H, W, C) float32, in batches (with ``flip_test``
        the normalised mean of each input's and its mirror image's)."""
        batch = np.asarray(batch, np.float32)
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        if not self.flip_test:
            out = [self.network(batch[s:s + batch_size]) for s in range(0, len(batch), batch_size)]
            return np.concatenate(out).astype(np.float32)
        out = []
        for s in range(0, len(batch), batch_size):
            part = batch[s:s + batch_size]
            both = self.network(np.concatenate([part, part[:, :, ::-1]]))
            mean = both[:len(part)] + both[len(part):]
            out.append(mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12))
        return np.concatenate(out).astype(np.float32)

    def embed_crops(self, crops, batch_size: int = 64) -> np.ndarray:
        """Embeddings of uint8 crops (N, H, W, 3) already aligned to the framing at the input size."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or tuple(crops.shape[1:3]) != self.input_size or crops.shape[-1] != 3:
            raise UsageError(f"embed_crops: expected (N, {self.input_size[0]}, {self.input_size[1]}, 3) crops, "
                             f"got {crops.shape}")
        return self.embed_network_inputs(self.normalize(crops), batch_size)

    def align(self, image: np.ndarray, face) -> np.ndarray:
        """The uint8 crop of a detected ``face`` of ``image``, warped onto the card's framing (Pillow's C warp;
        the TensorFlow engine gives the same crop, slower)."""
        from facezoo.face.align import align_to_spec
        return align_to_spec(image, face.landmarks, self.spec, engine="numpy")

    def embed_faces(self, images, *, detect="auto", batch_size: int = 32, min_face: float = 20,
                    pick: str = "largest"):
        """Embeddings of many images without stopping at faceless photos.

        ``pick`` chooses the face of a photo with several: ``"largest"`` (box area) or ``"center"`` (box centre
        nearest the image centre: LFW's convention, whose photos are centred on the person named).

        Returns:
            ``(embeddings, faces)``: float32 (N, dim) with NaN rows for photos in which no face was found, and
            per image the ``facezoo.face.Face`` used, or None when the image went in as a crop or
            had no face; ``faces[i] is None and not np.isnan(embeddings[i]).any()`` means "used as a crop".
        Raises:
            ImageError: an input cannot be read as an image (the message names it).
        """
        _check_detect(detect)
        _check_batch_size(batch_size)
        if pick not in ("largest", "center"):
            raise UsageError(f"pick must be 'largest' or 'center', got {pick!r}")
        items = _items(images)
        out = np.full((len(items), self.dim), np.nan, np.float32)
        faces: list = [None] * len(items)
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            decoded = [load_image(item) for item in chunk]
            as_crop = [detect is False or (detect == "auto" and tuple(im.shape[:2]) == self.input_size)
                       for im in decoded]
            to_detect = [k for k, crop in enumerate(as_crop) if not crop]
            found = self.detector.detect([decoded[k] for k in to_detect], min_face=min_face) if to_detect else []
            rows, inputs = [], []
            for k, image in enumerate(decoded):
                if as_crop[k]:
                    inputs.append(self.preprocess(image))
                    rows.append(start + k)
            for k, image_faces in zip(to_detect, found):
                if image_faces:
                    face = image_faces[0] if pick == "largest" else _central(image_faces, decoded[k].shape)
                    faces[start + k] = face
                    inputs.append(self.normalize(self.align(decoded[k], face)))
                    rows.append(start + k)
            if rows:
                out[rows] = self.embed_network_inputs(np.stack(inputs), batch_size)
        return out, faces

    def embed(self, images, *, detect="auto", batch_size: int = 32) -> np.ndarray:
        """Embeddings of one image or a list: float32 (N, dim), rows of unit length.

        Args:
            images: a path, bytes, a numpy array, a PIL image, or a list of these (or an (N, H, W, 3) array).
            detect: ``True``: find the largest face (shipped RetinaFace) and align it to the card's framing;
                ``False``: the images are crops in the framing (centre-cropped to the input's aspect and resized,
                as ``FaceModel.predict`` does); ``"auto"``: crops when exactly of the input size, else detect.
            batch_size: images per detector and network call.

        Raises:
            ImageError: an input is not a readable image; ``NoFaceError`` when a photo has no face.
        """
        items = _items(images)
        vectors, _faces = self.embed_faces(items, detect=detect, batch_size=batch_size)
        missing = np.isnan(vectors).any(1)
        if missing.any():
            i = int(np.argmax(missing))
            raise NoFaceError(f"{describe(items[i])}: no face found (give a photo with a visible face, or a crop "
                              "in the model's framing with detect=False)")
        return vectors

    # ------------------------------------------------------------------ pairs
    def distance(self, a, b) -> np.ndarray | float:
        """Euclidean distance of embeddings ``a`` and ``b`` ((dim,) or (N, dim) each; broadcasts one row)."""
        ea, eb = as_embeddings(a, self.dim, "a"), as_embeddings(b, self.dim, "b")
        if len(ea) != len(eb) and 1 not in (len(ea), len(eb)):
            raise UsageError(f"distance: {len(ea)} embeddings against {len(eb)}; give equal counts or one row")
        d = euclidean(ea, eb)
        return float(d[0]) if np.ndim(a) == 1 and np.ndim(b) == 1 else d

    def verify(self, a, b, *, detect="auto", threshold: float | None = None) -> dict:
        """Are the faces of ``a`` and ``b`` the same person?

        Args:
            a, b: images (path, bytes, array, PIL) of one face each; in a photo the largest face is used.
            detect: as in ``embed``.
            threshold: override the card's distance threshold.

        Returns:
            ``{"distance", "threshold", "same", "faces"}`` (plus ``"probability"``, the pair head's P(same),
            when the model ships one); ``faces`` holds for each input ``{"input", "faceRectangle", "score"}``
            of the face used, or ``{"input", "crop": True}`` when it went in as a crop.
        """
        from facezoo.face.analyze import face_rectangle
        vectors, faces = self.embed_faces([a, b], detect=detect, batch_size=2)
        for item, vector in zip((a, b), vectors):
            if np.isnan(vector).any():
                raise NoFaceError(f"{describe(item)}: no face found (give a photo with a visible face, or a crop "
                                  "in the model's framing with detect=False)")
        limit = self.threshold if threshold is None else float(threshold)
        distance = float(euclidean(vectors[0], vectors[1])[0])
        used = []
        for item, face in zip((a, b), faces):
            entry = {"input": describe(item)}
            if face is None:
                entry["crop"] = True
            else:
                entry["faceRectangle"] = face_rectangle(face.box)
                entry["score"] = round(float(face.score), 4)
            used.append(entry)
        result = {"distance": round(distance, 6), "threshold": limit, "same": bool(distance <= limit), "faces": used}
        if self.pair_head is not None:
            result["probability"] = round(float(self.pair_head.probability(vectors[:1], vectors[1:])[0]), 4)
        return result


def _items(images) -> list:
    """A list of inputs: a list or tuple as it is, an (N, H, W, C) array as N images, anything else as one."""
    if isinstance(images, (list, tuple)):
        return list(images)
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images)
    return [images]


def _central(faces, shape):
    """The face whose box centre is nearest the centre of an image of ``shape``."""
    cy, cx = shape[0] / 2.0, shape[1] / 2.0
    return min(faces, key=lambda f: (f.box[0] + f.box[2] / 2 - cx) ** 2 + (f.box[1] + f.box[3] / 2 - cy) ** 2)


_LOADED: dict = {}


def verify(a, b, model="verify_face", **kwargs) -> dict:
    """``facezoo.load(model).verify(a, b, **kwargs)``, keeping loaded models for reuse (see ``FaceEmbedder.verify``).

    ``model`` is a registered name or a loaded ``FaceEmbedder``.
    """
    if isinstance(model, FaceEmbedder):
        embedder = model
    elif isinstance(model, str):
        if model not in _LOADED:
            from facezoo.zoo import load
            loaded = load(model)
            if not isinstance(loaded, FaceEmbedder):
                raise UsageError(f"{model} is a {loaded.card.task} model, not a verification model")
            _LOADED[model] = loaded
        embedder = _LOADED[model]
    else:
        raise UsageError(f"model must be a registered name or a FaceEmbedder, got {type(model).__name__}")
    return embedder.verify(a, b, **kwargs)
