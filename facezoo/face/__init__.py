"""Face detection: boxes, five landmarks and a score per face, behind one interface.

    from facezoo.face import get_detector
    faces = get_detector().detect([image])[0]     # list of Face, largest first

``get_detector("retinaface")`` (default, shipped weights, a few ms per photo) or ``get_detector("mtcnn")``
(the ``facezoo[detect]`` extra). The RetinaFace network builder lives in ``facezoo.face.retinaface``.
"""
from facezoo.face.detect import DETECTORS, Face, FaceDetector, get_detector  # noqa: F401
