"""``facezoo.analyze``: every face of ordinary photos, detected, aligned to each model's framing and described.

    import facezoo
    result = facezoo.analyze("group.jpg")                 # one dict per image
    for face in result["faces"]:
        face["faceRectangle"], face["landmarks"], face["attributes"]["Smiling"], face["attributes"]["age"]

The path of one photo: ``facezoo.images.load_image`` (EXIF, size limits, any mode) -> a face detector
(``facezoo.face.detect``; RetinaFace by default) -> for each model, every face warped by
``facezoo.face.align.align_to_spec`` onto the framing its card records (CelebA's aligned framing is not
UTKFace's tight crop) -> the model, faces of all images batched together -> the model's own decoding.
The result is JSON-serialisable and deterministic; an image without a face is a result with no faces.
"""
from __future__ import annotations

import numpy as np

from facezoo.errors import UsageError
from facezoo.images import ImageError, describe, load_image
from facezoo.zoo.registry import ANALYZE_MODELS

DEFAULT_MODELS = ANALYZE_MODELS  # facezoo.zoo.registry.ANALYZE_MODELS: dmtl_face
LANDMARK_NAMES = ("leftEye", "rightEye", "noseTip", "mouthLeft", "mouthRight")


def face_rectangle(box) -> dict:
    """``(left, top, width, height)`` floats -> the expression API's ``faceRectangle`` (whole pixels)."""
    left, top, width, height = (float(v) for v in box)
    return {"left": int(round(left)), "top": int(round(top)), "width": int(round(width)),
            "height": int(round(height))}


class FaceAnalyzer:
    """Detection + alignment + attribute models, loaded once and reused (``facezoo.analyze`` keeps one).

    Args:
        models: registered model names or loaded ``FaceModel`` objects; each card must record its framing.
        detector: ``"retinaface"`` (fast default), ``"mtcnn"`` (needs ``facezoo[detect]``) or a ``FaceDetector``.
        batch_size: faces per forward pass of each model.
        backend, precision: what runs the named models and the RetinaFace detector (``facezoo.backends``; default:
            the fastest installed backend, fp32). The detector runs fp32 (or bf16/float16) whatever the models'
            precision: it has no int8 graph.
        flip_test: for the named models: None (default) follows each card's ``architecture["flip_test"]``
            (what its metrics were measured with), True / False turn the flip test on / off (off halves the
            network work per face; see ``facezoo.load``).
    """

    def __init__(self, models=DEFAULT_MODELS, detector="retinaface", batch_size: int = 64,
                 backend: str | None = None, precision: str | None = None, flip_test: bool | None = None):
        from facezoo.face.detect import FaceDetector, get_detector
        from facezoo.zoo import load
        if isinstance(models, str):
            models = (models,)
        if not models:
            raise UsageError("analyze needs at least one model (facezoo list shows them)")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise UsageError(f"batch_size must be a positive int, got {batch_size!r}")
        if flip_test is not None and not isinstance(flip_test, bool):
            raise UsageError(f"flip_test must be None, True or False, got {flip_test!r}")
        options = {} if flip_test is None else {"flip_test": flip_test}
        self.models = [load(m, backend=backend, precision=precision, **options) if isinstance(m, str) else m
                       for m in models]
        for m in self.models:
            if m.spec.framing is None:
                raise UsageError(f"{m.card.name}: its card records no face framing, so analyze cannot align faces "
                                 "to it; use predict on crops in its framing instead")
        if isinstance(detector, FaceDetector):
            self.detector = detector
        elif detector == "retinaface":
            self.detector = load("retinaface_mnet025", backend=backend,  # the shipped weights, checksum-verified
                                 precision=precision if precision in ("bf16", "float16") else None)
        else:
            self.detector = get_detector(detector)
        self.batch_size = int(batch_size)

    def analyze(self, images, *, min_face: float = 20, score_threshold: float | None = None,
                max_faces: int | None = None, errors: str = "raise", facedb=None):
        """Describes every face of one image or a list of them.

        Args:
            images: a path, bytes, a numpy array, a PIL image, or a list of these.
            min_face: faces smaller than this many pixels (box side) are ignored.
            score_threshold: detector confidence threshold (None: the detector's default).
            max_faces: at most this many faces per image, largest first (None: all).
            errors: ``"raise"`` stops at the first bad input with an ``ImageError`` naming it; ``"collect"``
                returns ``{"input": ..., "error": "..."}`` for it and carries on.
            facedb: a ``facezoo.face.db.FaceDB`` (with its embedder): each face is aligned to the embedder's
                framing, embedded and looked up; the face gets ``identity`` ``{"name", "distance"}`` of the nearest
                enrolled person within the model card's threshold, or None.

        Returns:
            Per image ``{"input", "width", "height", "faces": [...]}``; each face has ``faceRectangle``
            ``{left, top, width, height}``, ``landmarks`` (5 named points), ``score`` (detector confidence)
            and ``attributes``: every model's decoded heads (``probability``/``present``, ``label``/
            ``probabilities``, ``value``; ``confidence`` and ``abstain``; ``model`` names the model).
            A single input gives a single dict.
        """
        if errors not in ("raise", "collect"):
            raise UsageError(f"errors must be 'raise' or 'collect', got {errors!r}")
        if facedb is not None and getattr(facedb, "embedder", None) is None:
            raise UsageError("facedb must be a FaceDB holding its embedder (FaceDB(model) or FaceDB.load(path, model))")
        single = not isinstance(images, (list, tuple))
        items = [images] if single else list(images)
        results: list = [None] * len(items)
        decoded, where = [], []
        for i, item in enumerate(items):
            try:
                decoded.append(load_image(item))
                where.append(i)
            except ImageError as e:
                if errors == "raise":
                    raise
                results[i] = {"input": describe(item), "error": str(e)}
        found = self.detector.detect(decoded, min_face=min_face, score_threshold=score_threshold,
                                     max_faces=max_faces) if decoded else []
        faces = [(k, face) for k, image_faces in enumerate(found) for face in image_faces]
        per_face = [dict() for _ in faces]
        for model in self.models:
            engine = getattr(model, "align_engine", "numpy")
            crops = [_align(decoded[k], face, model.spec, engine) for k, face in faces]
            for start in range(0, len(crops), self.batch_size):
                described = model.describe_crops(np.stack(crops[start:start + self.batch_size]))
                for j, attributes in enumerate(described):
                    for name, entry in attributes.items():
                        per_face[start + j].setdefault(name, {**entry, "model": model.card.name})
        identities = _identities(facedb, decoded, faces, self.batch_size) if facedb is not None else None
        by_image: dict[int, list] = {}
        for n, ((k, face), attributes) in enumerate(zip(faces, per_face)):
            entry = {"faceRectangle": face_rectangle(face.box),
                     "landmarks": {n: [round(float(x), 2), round(float(y), 2)]
                                   for n, (x, y) in zip(LANDMARK_NAMES, face.landmarks)},
                     "score": round(float(face.score), 4),
                     "attributes": attributes}
            if "scores" in attributes.get("expression", {}):
                entry["scores"] = attributes["expression"]["scores"]  # the expression API's per-face scores
            if identities is not None:
                entry["identity"] = identities[n]
            by_image.setdefault(k, []).append(entry)
        for k, (i, image) in enumerate(zip(where, decoded)):
            results[i] = {"input": describe(items[i]), "width": int(image.shape[1]), "height": int(image.shape[0]),
                          "faces": by_image.get(k, [])}
        return results[0] if single else results


def _identities(facedb, decoded, faces, batch_size) -> list:
    """Per face the ``facedb`` match within its model's threshold (``{"name", "distance"}``) or None."""
    if not faces or not len(facedb):
        return [None] * len(faces)
    embedder = facedb.embedder
    crops = np.stack([_align(decoded[k], face, embedder.spec) for k, face in faces])
    vectors = embedder.embed_crops(crops, batch_size)
    return facedb.identify(embeddings=vectors)


def _align(image, face, spec, engine="numpy"):
    from facezoo.face.align import align_to_spec
    return align_to_spec(image, face.landmarks, spec, engine=engine)


_ANALYZERS: dict = {}


def analyze(images, models=DEFAULT_MODELS, *, detector="retinaface", min_face: float = 20,
            score_threshold: float | None = None, max_faces: int | None = None, errors: str = "raise",
            facedb=None, backend: str | None = None, precision: str | None = None,
            flip_test: bool | None = None):
    """``FaceAnalyzer(models, detector).analyze(images, ...)``; analyzers of named models are kept for reuse.

    See ``FaceAnalyzer.analyze`` for arguments and the result format.
    """
    models = (models,) if isinstance(models, str) else tuple(models)
    named = all(isinstance(m, str) for m in models) and isinstance(detector, str)
    key = (models, detector, backend, precision, flip_test) if named else None
    analyzer = _ANALYZERS.get(key) if named else None
    if analyzer is None:
        analyzer = FaceAnalyzer(models, detector, backend=backend, precision=precision, flip_test=flip_test)
        if named:
            _ANALYZERS[key] = analyzer
    return analyzer.analyze(images, min_face=min_face, score_threshold=score_threshold, max_faces=max_faces,
                            errors=errors, facedb=facedb)
