"""Aligned face crops of many images, computed once and cached in resumable chunks.

``aligned_crops(paths, spec, cache_dir)`` detects the largest face of every image (the shipped RetinaFace),
warps it onto ``spec.framing`` at the input size (``facezoo.face.align.align_to_spec``, the analyze path) and
stores uint8 crops in ``cache_dir/chunk_NNNNN.npz`` files of ``chunk`` images; a rerun reuses finished
chunks, so a stopped job resumes. ``align="center"`` skips detection for images that are already crops in
the framing (centre crop to the input's aspect and resize, as ``FaceModel.predict`` does).
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from facezoo.errors import UsageError

ALIGN_MODES = ("detect", "center")


def aligned_crops(paths, spec, cache_dir: str, *, align: str = "detect", chunk: int = 256, detector=None,
                  min_face: float = 20, progress: bool = True):
    """``(crops uint8 (N, H, W, 3), found bool (N,))`` for ``paths``; ``found`` is False where no face was found
    (that crop is all zeros). The cache is keyed by the paths, input size, framing and mode."""
    from tqdm.auto import tqdm

    from facezoo.face.align import align_to_spec
    from facezoo.images import load_image
    from facezoo.preprocessing import fit_to_input
    if align not in ALIGN_MODES:
        raise UsageError(f"align must be one of {ALIGN_MODES}, got {align!r}")
    if align == "detect" and spec.framing is None:
        raise UsageError("align='detect' needs a preprocessing spec with a face framing")
    paths = [os.fspath(p) for p in paths]
    key = hashlib.sha256(json.dumps([paths, spec.to_dict(), align]).encode()).hexdigest()[:16]
    folder = os.path.join(cache_dir, f"crops-{key}")
    os.makedirs(folder, exist_ok=True)
    h, w = spec.input_size
    crops = np.zeros((len(paths), h, w, 3), np.uint8)
    found = np.zeros(len(paths), bool)
    starts = range(0, len(paths), chunk)
    for start in tqdm(starts, desc=f"crops ({align})", unit="chunk", disable=not progress or len(starts) < 2):
        part = os.path.join(folder, f"chunk_{start // chunk:05d}.npz")
        end = min(start + chunk, len(paths))
        if os.path.isfile(part):
            with np.load(part, allow_pickle=False) as data:
                crops[start:end], found[start:end] = data["crops"], data["found"]
            continue
        images = [load_image(p) for p in paths[start:end]]
        if align == "center":
            for i, image in enumerate(images):
                fitted = fit_to_input(image, spec.input_size, spec.resize, spec.antialias).numpy()
                crops[start + i] = np.round(fitted).astype(np.uint8)
                found[start + i] = True
        else:
            if detector is None:
                from facezoo.zoo import load
                detector = load("retinaface_mnet025")
            for i, (image, faces) in enumerate(zip(images, detector.detect(images, min_face=min_face))):
                if faces:
                    crops[start + i] = align_to_spec(image, faces[0].landmarks, spec)
                    found[start + i] = True
        tmp = part + ".tmp.npz"
        np.savez(tmp, crops=crops[start:end], found=found[start:end])
        os.replace(tmp, part)
    return crops, found
