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
FALLBACKS = ("none", "mean")


def aligned_crops(paths, spec, cache_dir: str, *, align: str = "detect", chunk: int = 256, detector=None,
                  min_face: float = 20, progress: bool = True, upscale_below: int = 0, fallback: str = "none"):
    """``(crops uint8 (N, H, W, 3), found bool (N,))`` for ``paths``; ``found`` is False where no face was found
    (that crop is all zeros, unless ``fallback`` fills it). The cache is keyed by the paths, input size, framing,
    mode and the two options below.

    Args:
        upscale_below: detect on a bicubic enlargement (by a whole factor) of images whose short side is under
            this many pixels (FER-2013's 48x48 faces: RetinaFace finds about half of them as they are, 98% at 3x);
            the crop is still warped from the original pixels.
        fallback: ``"none"``, or ``"mean"`` for data sets of pre-cropped faces: an image where no face was found
            is aligned by the mean relative landmarks of the faces found among ``paths`` (``found`` stays False).
    """
    from tqdm.auto import tqdm

    from facezoo.face.align import align_to_spec
    from facezoo.images import load_image
    from facezoo.preprocessing import fit_to_input
    if align not in ALIGN_MODES:
        raise UsageError(f"align must be one of {ALIGN_MODES}, got {align!r}")
    if fallback not in FALLBACKS:
        raise UsageError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
    if align == "detect" and spec.framing is None:
        raise UsageError("align='detect' needs a preprocessing spec with a face framing")
    paths = [os.fspath(p) for p in paths]
    options = [paths, spec.to_dict(), align] + ([upscale_below] if upscale_below else [])
    key = hashlib.sha256(json.dumps(options).encode()).hexdigest()[:16]
    folder = os.path.join(cache_dir, f"crops-{key}")
    os.makedirs(folder, exist_ok=True)
    h, w = spec.input_size
    crops = np.zeros((len(paths), h, w, 3), np.uint8)
    found = np.zeros(len(paths), bool)
    relative = np.zeros((len(paths), 5, 2), np.float32)  # landmarks / image size (pixel centres), where found
    starts = range(0, len(paths), chunk)
    for start in tqdm(starts, desc=f"crops ({align})", unit="chunk", disable=not progress or len(starts) < 2):
        part = os.path.join(folder, f"chunk_{start // chunk:05d}.npz")
        end = min(start + chunk, len(paths))
        if os.path.isfile(part):
            with np.load(part, allow_pickle=False) as data:
                crops[start:end], found[start:end] = data["crops"], data["found"]
                if "relative" in data:
                    relative[start:end] = data["relative"]
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
            factors = [_upscale_factor(image, upscale_below) for image in images]
            seen = [_enlarged(image, f) for image, f in zip(images, factors)]
            for i, (image, f, faces) in enumerate(zip(images, factors, detector.detect(seen, min_face=min_face))):
                if faces:
                    points = (np.asarray(faces[0].landmarks, np.float32) + 0.5) / f - 0.5
                    crops[start + i] = align_to_spec(image, points, spec, engine="numpy")
                    found[start + i] = True
                    relative[start + i] = (points + 0.5) / np.array([image.shape[1], image.shape[0]], np.float32)
        tmp = part + ".tmp.npz"
        np.savez(tmp, crops=crops[start:end], found=found[start:end], relative=relative[start:end])
        os.replace(tmp, part)
    if fallback == "mean" and found.any() and not found.all():
        mean = relative[found].mean(axis=0)
        for i in np.flatnonzero(~found):
            image = load_image(paths[i])
            crops[i] = align_to_spec(image, mean * np.array([image.shape[1], image.shape[0]], np.float32) - 0.5,
                                     spec, engine="numpy")
    return crops, found


def _upscale_factor(image, upscale_below: int) -> int:
    side = min(image.shape[:2])
    return max(1, -(-int(upscale_below) // side)) if upscale_below and side < upscale_below else 1


def _enlarged(image, factor: int):
    if factor == 1:
        return image
    from PIL import Image
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((w * factor, h * factor), Image.BICUBIC))
