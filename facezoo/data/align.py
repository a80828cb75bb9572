"""Face geometry: where landmarks go when an image is cropped, resized or aligned.

Landmark coordinates are pixel indices: (0, 0) is the centre of the top-left pixel, as in the
CelebA landmark file and in ``tf.raw_ops.ImageProjectiveTransformV3``.
"""
from __future__ import annotations

import numpy as np


def fit_landmarks(landmarks, image_hw, size):
    """Moves landmarks the way ``facezoo.preprocess.fit_to_input`` moves the pixels.

    ``fit_to_input`` centre-crops to the target aspect and resizes with half-pixel centres; this
    applies the same crop offset and scale, so landmarks stay on the features they mark.

    Args:
        landmarks: (..., 2) array of (x, y) pixel indices in the original image.
        image_hw: ``(height, width)`` of the original image.
        size: ``(height, width)`` passed to ``fit_to_input``.

    Returns:
        float32 array of the same shape in output-image pixel indices.
    """
    h, w = int(image_hw[0]), int(image_hw[1])
    th, tw = int(size[0]), int(size[1])
    crop_h = min(h, int(np.round(w * th / tw)))
    crop_w = min(w, int(np.round(h * tw / th)))
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    points = np.asarray(landmarks, np.float32)
    x = (points[..., 0] - left + 0.5) * (tw / crop_w) - 0.5
    y = (points[..., 1] - top + 0.5) * (th / crop_h) - 0.5
    return np.stack([x, y], axis=-1).astype(np.float32)
