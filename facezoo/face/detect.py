"""Face detection behind one interface: boxes, five landmarks and a score for each face in a batch of images.

    from facezoo.face import get_detector
    detector = get_detector()                       # RetinaFace-MobileNet0.25, shipped weights
    faces = detector.detect([image1, image2])       # list (per image) of lists of Face, largest first
    faces[0][0].box, faces[0][0].landmarks, faces[0][0].score

Coordinates are in the original image's pixels. Boxes are ``(left, top, width, height)`` in continuous
coordinates (the image spans ``[0, W] x [0, H]``), clipped to the image; landmarks are pixel indices
(``(0, 0)`` is the centre of the top-left pixel, as in ``facezoo.face.align``; RetinaFace's outputs are read
as continuous coordinates and shifted by half a pixel -- its training annotations do not document their
convention, so treat sub-pixel offsets as noise) in the order left eye, right eye, nose, left mouth corner,
right mouth corner, "left" meaning the image's left -- the order of ``facezoo.face.align.FACE_TEMPLATE``, so
``align_face(image, face.landmarks, size)`` works directly.

Images larger than the detector's working size are downscaled (aspect kept) before detection, so memory
and time per image are bounded whatever the input size; results are mapped back to the original pixels.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import numbers

import numpy as np

from facezoo.errors import UsageError
from facezoo.face.retinaface import BGR_MEAN
from facezoo.images import load_image

DETECTORS = ("retinaface", "mtcnn")
# Chosen with benchmarks/detect.py (results/detect.json): from 128 to 256 pixels the staged LFW photos are all
# found and UTKFace's 3-4 misses are crops without a face, so recall does not decide; 160 is the largest size
# whose batch-1 call stays near 5 ms on 2 shared cores (~1 ms more than 128) and it reaches faces of ~25 px
# in a 250 px photo (128: ~31 px). Raise it for small faces in large photos.
DEFAULT_WORKING_SIZE = 160
DEFAULT_MIN_FACE = 20
DEFAULT_NMS_THRESHOLD = 0.4  # the source package's and biubug6's
VARIANCES = (0.1, 0.2)


@dataclasses.dataclass(frozen=True, eq=False)
class Face:
    """One detected face, in the original image's pixels (see the module docstring for conventions).

    Attributes:
        box: ``(left, top, width, height)`` floats.
        landmarks: float32 (5, 2) array of (x, y): left eye, right eye, nose, left and right mouth corner.
        score: detector confidence in [0, 1].
    """

    box: tuple
    landmarks: np.ndarray
    score: float

    def __eq__(self, other):  # the generated __eq__ would compare the landmark arrays element-wise
        if not isinstance(other, Face):
            return NotImplemented
        return (tuple(self.box) == tuple(other.box) and self.score == other.score
                and np.array_equal(self.landmarks, other.landmarks))

    __hash__ = None

    def to_dict(self) -> dict:
        """Plain floats and lists, ready for JSON."""
        return {"box": [float(v) for v in self.box], "landmarks": self.landmarks.astype(float).tolist(),
                "score": float(self.score)}


def _as_batch(images) -> list:
    """The batch as a list of unread items; detectors decode them a chunk at a time with ``load_image``."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return list(images)
    if not isinstance(images, (list, tuple)):
        raise UsageError(f"detect() takes a batch (a list of images or an (N, H, W, 3) array); got "
                         f"{type(images).__name__}{getattr(images, 'shape', '')}: wrap one image as [image]")
    return list(images)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_options(min_face, score_threshold, max_faces):
    if min_face is not None and (not _is_number(min_face) or min_face < 0):
        raise UsageError(f"min_face must be a number of pixels >= 0; got {min_face!r}")
    if score_threshold is not None and (not _is_number(score_threshold) or not 0 <= score_threshold <= 1):
        raise UsageError(f"score_threshold must lie in [0, 1]; got {score_threshold!r}")
    if max_faces is not None and (not isinstance(max_faces, numbers.Integral) or isinstance(max_faces, bool)
                                  or max_faces < 1):
        raise UsageError(f"max_faces must be a positive integer or None; got {max_faces!r}")


def _select(faces: list[Face], min_face, max_faces) -> list[Face]:
    """Drops faces whose box is under ``min_face`` on either side; largest (box area) first, at most ``max_faces``."""
    if min_face:
        faces = [f for f in faces if min(f.box[2], f.box[3]) >= min_face]
    faces.sort(key=lambda f: f.box[2] * f.box[3], reverse=True)
    return faces[:max_faces] if max_faces is not None else faces


def clip_box(left, top, right, bottom, width, height) -> tuple:
    """``(left, top, width, height)`` of the box clipped to a ``width`` x ``height`` image."""
    left, right = np.clip([left, right], 0, width)
    top, bottom = np.clip([top, bottom], 0, height)
    return float(left), float(top), float(right - left), float(bottom - top)


class FaceDetector:
    """The detection interface: ``detect(images, ...)`` -> one list of ``Face`` per image.

    Subclasses implement ``_detect_batch(items, score_threshold, min_face)`` returning, per item, the faces
    above the threshold; they decode items with ``load_image`` a few at a time, so a long batch of large photos
    never sits in memory at full size (``min_face`` is a hint a detector may use to search less). Option
    checks, the ``min_face`` filter, ordering and ``max_faces`` live here once.
    """

    name = ""
    default_score_threshold = 0.5

    def detect(self, images, *, min_face: float = DEFAULT_MIN_FACE, score_threshold: float | None = None,
               max_faces: int | None = None) -> list[list[Face]]:
        """Detects faces in each image of a batch.

        Args:
            images: a list of images (anything ``facezoo.images.load_image`` takes: RGB uint8 arrays of any
                size, paths, bytes, PIL images) or an (N, H, W, 3) array.
            min_face: faces whose box is smaller than this many original pixels on either side are dropped.
            score_threshold: minimum confidence; None for the detector's default.
            max_faces: keep at most this many faces per image (the largest); None keeps all.

        Returns:
            One list per image of ``Face``, largest box first; an image without faces gives an empty list.
        """
        _check_options(min_face, score_threshold, max_faces)
        threshold = self.default_score_threshold if score_threshold is None else float(score_threshold)
        batch = _as_batch(images)
        if not batch:
            return []
        found = self._detect_batch(batch, threshold, min_face or 0)
        return [_select(faces, min_face, max_faces) for faces in found]

    def _detect_batch(self, items: list, score_threshold: float, min_face: float) -> list[list[Face]]:
        raise NotImplementedError


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression.

    Args:
        boxes: (N, 4) ``(x1, y1, x2, y2)``.
        scores: (N,) confidences.
        iou_threshold: a box overlapping a kept, higher-scoring box by more than this IoU is dropped.

    Returns:
        Indices of the kept boxes, highest score first.
    """
    order = np.argsort(-scores, kind="stable")
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0)
        h = np.maximum(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0)
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, np.int64)


def decode(loc, landmarks, anchors):
    """RetinaFace offsets -> boxes ``(x1, y1, x2, y2)`` and landmarks (N, 5, 2), in the anchors' pixels.

    Box centres move by ``loc[:2] * 0.1`` anchor sizes and sides scale by ``exp(loc[2:] * 0.2)``; landmarks
    are ``0.1 * offset`` anchor sizes from the anchor centre (the variances the model was trained with).

    Args:
        loc: (N, 4) ``(dx, dy, dw, dh)``.
        landmarks: (N, 10) five ``(dx, dy)``.
        anchors: (N, 4) ``(cx, cy, w, h)``.
    """
    centre, size = anchors[:, :2], anchors[:, 2:]
    box_centre = centre + loc[:, :2] * VARIANCES[0] * size
    box_size = size * np.exp(loc[:, 2:] * VARIANCES[1])
    boxes = np.concatenate([box_centre - box_size / 2, box_centre + box_size / 2], axis=1)
    points = centre[:, None, :] + landmarks.reshape(-1, 5, 2) * VARIANCES[0] * size[:, None, :]
    return boxes, points


@functools.lru_cache(maxsize=16)
def _anchors(height: int, width: int) -> np.ndarray:
    from facezoo.face.retinaface import anchors
    return anchors(height, width)


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image
    if image.shape[:2] == (height, width):
        return image
    # reducing_gap: a box reduction first, then bilinear; antialiased and bounded in time for huge inputs.
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR, reducing_gap=3.0))


class RetinaFaceDetector(FaceDetector):
    """RetinaFace-MobileNet0.25 (facezoo.face.retinaface) with numpy decoding and NMS.

    Args:
        weights: ``"default"`` (shipped) or a ``.weights.h5`` path.
        working_size: images whose longer side exceeds this are downscaled to it before detection (never
            upscaled). Faces smaller than about 16 working pixels (16 * original side / working_size) are
            missed, so raise it for small faces in large photos.
        nms_threshold: IoU above which overlapping detections are merged.
        batch_size: images per network call (bounds memory for long batches).
        top_k: at most this many candidates per image go into NMS.
    """

    name = "retinaface"
    default_score_threshold = 0.5
    upscale = False  # images smaller than the working size keep their size (with_working_size changes it)

    def __init__(self, weights="default", working_size: int = DEFAULT_WORKING_SIZE,
                 nms_threshold: float = DEFAULT_NMS_THRESHOLD,
                 batch_size: int = 32, top_k: int = 750):
        self._configure(working_size, nms_threshold, batch_size, top_k)
        import tensorflow as tf

        from facezoo.face.retinaface import RetinaFaceMobileNet, preprocess_input
        self.model = RetinaFaceMobileNet(weights=weights)
        # uint8 in, preprocessing in the graph; the concrete function skips tf.function's per-call argument
        # matching (~0.4 ms of a ~4 ms call).
        self._forward = tf.function(lambda x: self.model(preprocess_input(x), training=False)).get_concrete_function(
            tf.TensorSpec([None, None, None, 3], tf.uint8))

    def with_working_size(self, working_size: int, upscale: bool = False) -> "RetinaFaceDetector":
        """This detector (the same network, not a copy of it) searching at another working size; with
        ``upscale``, smaller images are enlarged to it too (a 48-pixel crop's face is too small for the
        network's smallest anchors until it is)."""
        other = copy.copy(self)
        other._configure(working_size, other.nms_threshold, other.batch_size, other.top_k)
        other.upscale = bool(upscale)
        return other

    def _configure(self, working_size, nms_threshold, batch_size, top_k):
        if not isinstance(working_size, numbers.Integral) or working_size < 32:
            raise UsageError(f"working_size must be an integer >= 32 pixels; got {working_size!r}")
        self.working_size = int(working_size)
        self.nms_threshold = float(nms_threshold)
        self.batch_size = int(batch_size)
        self.top_k = int(top_k)

    @classmethod
    def from_file(cls, path: str, card) -> "RetinaFaceDetector":
        """The detector with checksum-verified weights and its card's settings (what ``facezoo.load`` calls)."""
        settings = card.architecture.get("detector", {})
        return cls(weights=path, **{k: v for k, v in settings.items() if k in ("working_size", "nms_threshold")})

    def prepare(self, items: list):
        """Images decoded and downscaled one by one, each top-left in a square canvas of the working size
        (rounded up to a multiple of 32), padded with the mean colour (zero after ``preprocess_input``).

        Every image gets the same canvas whatever else is in the batch, so its faces do not depend on the
        batch it came in (a canvas sized to the batch's largest image moved boxes by a few pixels).

        Returns:
            ``(canvas, scales, shapes)``: uint8 (N, H, W, 3) RGB, per image the working pixels per original
            pixel ``(x, y)``, and the original ``(height, width)``.
        """
        scales, resized, shapes = [], [], []
        for item in items:
            image = load_image(item)
            h, w = image.shape[:2]
            scale = self.working_size / max(h, w)
            if not self.upscale:
                scale = min(1.0, scale)
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            resized.append(_resize(image, *size))
            scales.append((size[1] / w, size[0] / h))
            shapes.append((h, w))
        side = -(-self.working_size // 32) * 32
        canvas = np.empty((len(resized), side, side, 3), np.uint8)
        canvas[:] = np.asarray(BGR_MEAN[::-1], np.uint8)
        for i, r in enumerate(resized):
            canvas[i, :r.shape[0], :r.shape[1]] = r
        return canvas, scales, shapes

    def raw_outputs(self, canvas: np.ndarray):
        """The network's ``(loc, conf, landmarks)`` numpy arrays for a prepared canvas."""
        import tensorflow as tf
        return [t.numpy() for t in self._forward(tf.constant(canvas))]

    def _detect_batch(self, items, score_threshold, min_face):
        results = []
        for start in range(0, len(items), self.batch_size):
            canvas, scales, shapes = self.prepare(items[start:start + self.batch_size])
            loc, conf, landmarks = self.raw_outputs(canvas)
            anchors = _anchors(*canvas.shape[1:3])
            for i, (scale, shape) in enumerate(zip(scales, shapes)):
                results.append(self._faces(loc[i], conf[i, :, 1], landmarks[i], anchors, scale, shape,
                                           score_threshold))
        return results

    def _faces(self, loc, scores, landmarks, anchors, scale, image_hw, score_threshold):
        keep = np.flatnonzero(scores > score_threshold)
        if keep.size > self.top_k:
            keep = keep[np.argsort(-scores[keep], kind="stable")[:self.top_k]]
        boxes, points = decode(loc[keep], landmarks[keep], anchors[keep])
        sx, sy = scale
        boxes = boxes / np.array([sx, sy, sx, sy], np.float32)
        points = points / np.array([sx, sy], np.float32) - 0.5
        kept = nms(boxes, scores[keep], self.nms_threshold)
        h, w = image_hw
        return [Face(box=clip_box(*boxes[j], w, h), landmarks=points[j].astype(np.float32),
                     score=float(scores[keep][j])) for j in kept]


class ExportedRetinaFaceDetector(RetinaFaceDetector):
    """The same detector with the network run by an exported graph (``facezoo.backends``), no TensorFlow.

    Args:
        runner: ``fn(uint8 canvas (N, H, W, 3)) -> {"loc", "conf", "landmarks"}`` (preprocessing in the graph).
        backend, precision: what runs it (for ``repr`` and ``facezoo bench``).
        Other arguments as ``RetinaFaceDetector``.
    """

    def __init__(self, runner, backend: str, precision: str = "fp32", working_size: int = DEFAULT_WORKING_SIZE,
                 nms_threshold: float = DEFAULT_NMS_THRESHOLD, batch_size: int = 32, top_k: int = 750):
        self._configure(working_size, nms_threshold, batch_size, top_k)
        self.runner, self.backend, self.precision = runner, backend, precision

    def __repr__(self):
        return f"ExportedRetinaFaceDetector(backend={self.backend!r}, precision={self.precision!r})"

    def raw_outputs(self, canvas: np.ndarray):
        out = self.runner(np.ascontiguousarray(canvas, np.uint8))
        return [out["loc"], out["conf"], out["landmarks"]]


class MtcnnDetector(FaceDetector):
    """The ``mtcnn`` package (P/R/O-Net cascade, weights in its wheel): slower, the accurate fallback.

    Install with ``pip install "facezoo[detect]"``. ``score_threshold`` is its O-Net threshold; ``min_face``
    also sets the smallest level of its image pyramid, and large images are downscaled to ``working_size``
    (mtcnn's time grows with the pixel count).
    """

    name = "mtcnn"
    default_score_threshold = 0.8
    KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

    def __init__(self, working_size: int = 1024):
        from facezoo.errors import MissingDependencyError
        try:
            from mtcnn import MTCNN
        except ImportError as e:
            raise MissingDependencyError(f"the mtcnn detector needs the mtcnn package ({e}); install it with "
                                         "pip install \"facezoo[detect]\"") from None
        self.working_size = int(working_size)
        self._mtcnn = MTCNN(device="CPU:0")

    def _detect_batch(self, items, score_threshold, min_face):
        results = []
        for item in items:
            image = load_image(item)
            h, w = image.shape[:2]
            scale = min(1.0, self.working_size / max(h, w))
            small = _resize(image, max(1, round(h * scale)), max(1, round(w * scale)))
            sx, sy = small.shape[1] / w, small.shape[0] / h
            found = self._mtcnn.detect_faces(small, min_face_size=max(12, int(min_face * scale)),
                                             threshold_onet=score_threshold)
            faces = []
            for f in found:
                x, y, bw, bh = (float(v) for v in f["box"])
                points = np.array([f["keypoints"][k] for k in self.KEYPOINTS], np.float32) / [sx, sy]
                faces.append(Face(box=clip_box(x / sx, y / sy, (x + bw) / sx, (y + bh) / sy, w, h),
                                  landmarks=points.astype(np.float32), score=float(f["confidence"])))
            results.append(faces)
        return results


def get_detector(name: str = "retinaface", **kwargs) -> FaceDetector:
    """A face detector by name: ``"retinaface"`` (fast, default) or ``"mtcnn"`` (needs ``facezoo[detect]``).

    Keyword arguments go to the detector's constructor (e.g. ``working_size``); ``backend`` picks what runs the
    shipped RetinaFace (``facezoo.backends``; default: the fastest installed). Build it once and reuse it:
    construction loads the weights and traces the network.
    """
    if name == "retinaface":
        backend = kwargs.pop("backend", None)
        if backend not in (None, "keras") and kwargs.get("weights", "default") != "default":
            raise UsageError(f"backend {backend!r} runs the shipped RetinaFace weights only; use backend='keras' "
                             "for other weights")
        from facezoo.zoo import list_models, load
        if kwargs.get("weights", "default") == "default" and backend != "keras" and \
                "retinaface_mnet025" in list_models():
            # The shipped weights through facezoo.load: checksum-verified, run by the default backend (an exported
            # graph when a runtime is installed and the graph is ready; facezoo.backends).
            kwargs.pop("weights", None)
            detector = load("retinaface_mnet025", backend=backend)
            if kwargs:
                detector._configure(kwargs.get("working_size", detector.working_size),
                                    kwargs.get("nms_threshold", detector.nms_threshold),
                                    kwargs.get("batch_size", detector.batch_size), kwargs.get("top_k", detector.top_k))
            return detector
        return RetinaFaceDetector(**kwargs)
    if name == "mtcnn":
        return MtcnnDetector(**kwargs)
    raise UsageError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
