"""Faces in photos: detection (``detect``), alignment to a model's framing (``align``), ``analyze``.

    from facezoo.face import get_detector
    faces = get_detector().detect([image])[0]     # list of Face, largest first

``get_detector("retinaface")`` (default, shipped weights, a few ms per photo) or ``get_detector("mtcnn")``
(the ``facezoo[detect]`` extra). The RetinaFace network builder lives in ``facezoo.face.retinaface``;
``facezoo.face.align.align_to_spec`` warps a face onto the framing a model card records, and
``facezoo.face.analyze`` puts detection, alignment and the attribute models together (``facezoo.analyze``);
``facezoo.face.db.FaceDB`` is a gallery of known people's embeddings (``analyze(..., facedb=db)`` names faces).
"""
from facezoo.face.db import FaceDB  # noqa: F401
from facezoo.face.detect import DETECTORS, Face, FaceDetector, get_detector  # noqa: F401
