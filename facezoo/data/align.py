"""Face geometry: where landmarks go when an image is cropped or resized, and 5-point alignment.

Landmark coordinates are pixel indices: (0, 0) is the centre of the top-left pixel, as in the
CelebA landmark file and in ``tf.raw_ops.ImageProjectiveTransformV3``.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


def fit_landmarks(landmarks, image_hw, size):
    """Moves landmarks the way ``facezoo.preprocessing.fit_to_input`` moves the pixels.

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


# Where the five landmarks sit in an aligned face, as fractions of a square crop: about the mean
# points of CelebA's aligned images after fit_to_input's centre square crop. Faces aligned to it
# keep hair, ears and chin in view like the CelebA training images, which attributes such as
# Bangs, Wearing_Hat or Double_Chin need (a tight recognition template would cut them off).
FACE_TEMPLATE = ((0.390, 0.510), (0.605, 0.510), (0.497, 0.635), (0.405, 0.740), (0.592, 0.740))


def template_points(output_size):
    """``FACE_TEMPLATE`` in pixel indices of an ``(height, width)`` output.

    The square template is centred in the output, so a non-square output (e.g. CelebA's
    218x178) adds margin on the long side instead of stretching the face.
    """
    h, w = float(output_size[0]), float(output_size[1])
    side = min(h, w)
    template = np.asarray(FACE_TEMPLATE, np.float32) * side
    return template + np.array([(w - side) / 2 - 0.5, (h - side) / 2 - 0.5], np.float32)


def similarity_transform(src_points, dst_points):
    """Least-squares similarity (rotation, uniform scale, translation) taking src onto dst.

    In 2-D Umeyama's SVD solution reduces to a closed form: with centred points, the rotation-
    scale matrix ``[[a, -b], [b, a]]`` has ``a = sum(s . d) / sum|s|^2`` and
    ``b = sum(s x d) / sum|s|^2``. Reflections are excluded by construction. Works eagerly and
    inside ``tf.function``.

    Args:
        src_points: (N, 2) points (x, y), N >= 2, not all equal.
        dst_points: (N, 2) matching points.

    Returns:
        float32 (2, 3) matrix ``M`` with ``dst ~= M[:, :2] @ src + M[:, 2]``.
    """
    src = tf.cast(tf.convert_to_tensor(src_points), tf.float32)
    dst = tf.cast(tf.convert_to_tensor(dst_points), tf.float32)
    src_mean, dst_mean = tf.reduce_mean(src, 0), tf.reduce_mean(dst, 0)
    s, d = src - src_mean, dst - dst_mean
    norm = tf.reduce_sum(s * s)
    a = tf.reduce_sum(s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]) / norm
    b = tf.reduce_sum(s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]) / norm
    rotation = tf.stack([tf.stack([a, -b]), tf.stack([b, a])])
    translation = dst_mean - tf.linalg.matvec(rotation, src_mean)
    return tf.concat([rotation, translation[:, None]], axis=1)


def align_face(image, landmarks, output_size, fill_mode: str = "constant"):
    """Warps a face so its five landmarks land on ``template_points(output_size)``.

    Args:
        image: (H, W, C) image in [0, 255] (uint8 or float).
        landmarks: (5, 2) landmarks in FaceRecord order, pixel indices of ``image``.
        output_size: ``(height, width)`` of the aligned face.
        fill_mode: ``constant`` (black), ``nearest``, ``reflect`` or ``wrap`` outside the image.

    Returns:
        ``(aligned, moved_landmarks)``: float32 (h, w, C) image in [0, 255] and the landmarks in
        its pixel indices (close to the template, exactly where the similarity put them).
    """
    image = tf.cast(tf.convert_to_tensor(image), tf.float32)
    matrix = similarity_transform(landmarks, template_points(output_size))
    a, b = matrix[0, 0], matrix[1, 0]
    tx, ty = matrix[0, 2], matrix[1, 2]
    det = a * a + b * b
    # The projective transform maps output pixels back to input pixels: the inverse similarity.
    ia, ib = a / det, b / det
    inverse = tf.stack([ia, ib, -(ia * tx + ib * ty), -ib, ia, ib * tx - ia * ty, 0.0, 0.0])
    h, w = int(output_size[0]), int(output_size[1])
    aligned = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=inverse[None], output_shape=[h, w], fill_value=0.0,
        interpolation="BILINEAR", fill_mode=fill_mode.upper())[0]
    aligned.set_shape([h, w, image.shape[-1]])
    points = tf.cast(tf.convert_to_tensor(landmarks), tf.float32)
    moved = tf.linalg.matvec(matrix[:, :2][None], points) + matrix[:, 2]
    return aligned, moved
