"""Face geometry: where landmarks go when an image is cropped or resized, and 5-point alignment.

Landmark coordinates are pixel indices: (0, 0) is the centre of the top-left pixel, as in the
CelebA landmark file and in ``tf.raw_ops.ImageProjectiveTransformV3``.
"""
from __future__ import annotations

import numpy as np

from facezoo.preprocessing import INTERPOLATIONS, resize_numpy


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
    import tensorflow as tf
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
    import tensorflow as tf
    h, w = int(output_size[0]), int(output_size[1])
    matrix = similarity_transform(landmarks, template_points(output_size))
    aligned = _warp(image, landmarks, template_points(output_size), (h, w), fill_mode)
    aligned.set_shape([h, w, image.shape[-1]])
    points = tf.cast(tf.convert_to_tensor(landmarks), tf.float32)
    moved = tf.linalg.matvec(matrix[:, :2][None], points) + matrix[:, 2]
    return aligned, moved


# Bicubic sampling is used up to this rendering step (k = 1: the face at or below the input's scale, k = 2).
BICUBIC_MAX_STEP = 2


def align_to_spec(image, landmarks, spec, fill_mode: str = "nearest", engine: str = "tensorflow",
                  interpolation: str | None = None) -> np.ndarray:
    """The crop a model was trained on: ``image`` warped so ``landmarks`` land on ``spec.framing``.

    A least-squares similarity takes the five detected landmarks onto the framing's points in the model
    input. When that shrinks the face, the warp first renders the crop at (about) the source's scale — the
    next power of two above the input size — and then resizes it with antialiasing, as ``fit_to_input``
    resized the training images; a bilinear warp straight to a small input would alias. Both engines give the
    same crop: the numpy one warps with Pillow in C (0.4-3 ms a face at the shipped input sizes), the TensorFlow
    one runs a compiled float64 gather graph per scale step (3-5x slower; for graphs that must stay in TF).

    Args:
        image: (H, W, 3) uint8 RGB image.
        landmarks: (5, 2) landmarks (left eye, right eye, nose, mouth corners), pixel indices of ``image``.
        spec: the model's ``facezoo.preprocessing.PreprocessSpec``; its ``framing`` must be known.
        fill_mode: how pixels outside the image are filled (``nearest``: repeat the edge).
        engine: ``"tensorflow"`` (one compiled graph per scale step) or ``"numpy"`` (the same warp through Pillow
            and the same resize in numpy: what ``analyze`` uses, also without TensorFlow; ``nearest`` fill only).
        interpolation: ``"bicubic"`` (cubic convolution a = -1, Pillow's) or ``"bilinear"`` between source
            pixels; None (default):
            what the framing records (``FaceFraming.interpolation``, bicubic unless a card says otherwise).
            Bicubic applies while the face is rendered at most ``BICUBIC_MAX_STEP`` (2) times the input size;
            larger faces are rendered at 4x or more and downscaled, where bilinear loses nothing visible.
            Bilinear blurs a face shifted by a fraction of a pixel: on CelebA's validation faces (89x109, about
            the models' input size) a random shift of up to half a pixel alone cost ``dmtl_celeba`` 0.32 point
            of mean accuracy; bicubic keeps the edges (``benchmarks/analyze.py`` measures the whole path).

    Returns:
        uint8 (h, w, 3) crop at ``spec.input_size``, ready for ``prepare_input``.
    """
    if spec.framing is None:
        raise ValueError("the model's card records no face framing, so faces cannot be aligned to it")
    if interpolation is None:
        interpolation = spec.framing.interpolation
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    h, w = spec.input_size
    target = np.asarray(spec.framing.points((h, w)), np.float64)
    src = np.asarray(landmarks, np.float64)
    matrix = _similarity_numpy(src, target)
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    k = 1
    while k < 8 and k * scale < 1.0:  # render at k times the input size, k a power of two
        k *= 2
    if k > BICUBIC_MAX_STEP:
        # The crop is rendered at k >= 4 times its size and then downscaled with antialiasing, which already
        # removes the detail bilinear interpolation blurs (its response at the output's Nyquist rate is 0.92 at
        # k = 4, 0.71 at k = 2 for a half-pixel shift); bicubic would cost ~3x the warp for nothing visible.
        interpolation = "bilinear"
    points = (target + 0.5) * k - 0.5
    inverse = _inverse_rows(_similarity_numpy(src, points))
    if engine == "numpy":
        return _align_numpy(np.asarray(image, np.uint8), inverse, h, w, k, spec.resize, spec.antialias, fill_mode,
                            interpolation)
    if engine != "tensorflow":
        raise ValueError(f"engine must be 'tensorflow' or 'numpy', got {engine!r}")
    import tensorflow as tf
    fn = _aligner(h, w, k, spec.resize, spec.antialias, fill_mode, interpolation)
    return fn(tf.convert_to_tensor(np.asarray(image, np.uint8)), tf.constant(inverse, tf.float64)).numpy()


def _similarity_numpy(src, dst) -> np.ndarray:
    """``similarity_transform`` in numpy (float64): the (2, 3) matrix taking ``src`` onto ``dst``."""
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    s, d = src - src_mean, dst - dst_mean
    norm = float((s * s).sum())
    a = float((s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum()) / norm
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / norm
    rotation = np.array([[a, -b], [b, a]])
    return np.concatenate([rotation, (dst_mean - rotation @ src_mean)[:, None]], axis=1)


def _inverse_rows(matrix) -> list[float]:
    """The 8 projective-transform numbers mapping output pixels back to input pixels (inverse similarity)."""
    a, b, tx, ty = matrix[0, 0], matrix[1, 0], matrix[0, 2], matrix[1, 2]
    det = a * a + b * b
    ia, ib = a / det, b / det
    return [ia, ib, -(ia * tx + ib * ty), -ib, ia, ib * tx - ia * ty, 0.0, 0.0]


_ALIGNERS: dict = {}


def cubic(v1, v2, v3, v4, d):
    """Cubic convolution (a = -1, Pillow's bicubic) between taps at -1, 0, 1, 2 for an offset ``d`` in [0, 1),
    in Pillow's polynomial form, which returns a flat region's value exactly (a sum of weights that add up to 1
    in floating point can land just below it, and the 8-bit truncation then one level lower)."""
    return v2 + d * ((v3 - v1) + d * ((2 * (v1 - v2) + v3 - v4) + d * (v2 - v1 - v3 + v4)))


def linear(v1, v2, d):
    """Linear interpolation in Pillow's form (exact on flat regions)."""
    return v1 + (v2 - v1) * d


def _interpolate(read, x, y, floor, interpolation):
    """Interpolates at points ``x``, ``y`` inside the image: along x in each of the 4 (bicubic) or 2 (bilinear)
    rows around the point, then along y, as Pillow does; ``read(dy, dx)`` returns the pixels at the point's
    floor offset by ``(dy, dx)`` (neighbours past the edge reading the edge)."""
    x0, y0 = floor(x), floor(y)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    if interpolation == "bicubic":
        rows = [cubic(*(read(dy, dx) for dx in range(-1, 3)), fx) for dy in range(-1, 3)]
        return cubic(*rows, fy)
    rows = [linear(read(dy, 0), read(dy, 1), fx) for dy in (0, 1)]
    return linear(*rows, fy)


def _sample(flat, height, width, x, y, interpolation):
    """Float64 samples of a flattened (H*W, C) image at points ``x``, ``y`` already inside the image."""
    x0i, y0i = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)

    def read(dy, dx):
        rows, cols = np.clip(y0i + dy, 0, height - 1), np.clip(x0i + dx, 0, width - 1)
        return np.take(flat, rows * width + cols, axis=0).astype(np.float64)

    return _interpolate(read, x, y, np.floor, interpolation)


def _to_uint8(values):
    """Pillow's conversion of an interpolated value to 8 bits: clipped to [0, 255], then truncated."""
    return np.floor(np.clip(values, 0.0, 255.0)).astype(np.uint8)


_PIL_FILTERS = {"bilinear": "BILINEAR", "bicubic": "BICUBIC"}


def warp_numpy(image, inverse, output_hw, fill_mode: str = "nearest", interpolation: str = "bilinear") -> np.ndarray:
    """An affine warp of a uint8 image, as the TensorFlow engine computes it: (H, W, C) -> uint8 (h, w, C).

    Output pixel (x, y) reads the input at ``(a0 x + a1 y + a2, b0 x + b1 y + b2)`` (the first six of the 8
    transform numbers), coordinates clamped to the image (the edge repeats: ``nearest`` fill), interpolated
    between the 4 (``bilinear``) or 16 (``bicubic``, cubic convolution a = -1) nearest pixels, neighbours past
    the edge reading the edge, then clipped to [0, 255] and truncated to 8 bits. This is Pillow's
    ``Image.transform`` wherever the sampling point lies inside the image, so those pixels are computed in C
    on the part of the image the crop reads (a large photo costs no more than a small one); pixels whose point
    was clamped (a face crossing the image edge) are computed by gathering in numpy.
    """
    if fill_mode != "nearest":
        raise ValueError(f"the numpy warp implements fill_mode 'nearest' only, got {fill_mode!r}")
    if interpolation not in _PIL_FILTERS:
        raise ValueError(f"interpolation must be one of {tuple(_PIL_FILTERS)}, got {interpolation!r}")
    image = np.asarray(image)
    squeeze = image.ndim == 2
    if squeeze:
        image = image[..., None]
    height, width, channels = image.shape
    h, w = int(output_hw[0]), int(output_hw[1])
    a0, a1, a2, b0, b1, b2 = (float(v) for v in inverse[:6])
    corners_x = [a0 * cx + a1 * cy + a2 for cx in (0, w - 1) for cy in (0, h - 1)]
    corners_y = [b0 * cx + b1 * cy + b2 for cx in (0, w - 1) for cy in (0, h - 1)]
    inside = (min(corners_x) >= 0 and max(corners_x) <= width - 1
              and min(corners_y) >= 0 and max(corners_y) <= height - 1)
    if image.dtype == np.uint8 and channels in (1, 3):
        out = _warp_pillow(image, (a0, a1, a2, b0, b1, b2), h, w, corners_x, corners_y, interpolation)
        if inside:
            return out[..., 0] if squeeze else out
    else:
        out = None
    flat = image.reshape(height * width, channels)
    if out is None:
        xs, ys = np.arange(w, dtype=np.float64)[None, :], np.arange(h, dtype=np.float64)[:, None]
        x = np.clip(a0 * xs + a1 * ys + a2, 0, width - 1)
        y = np.clip(b0 * xs + b1 * ys + b2, 0, height - 1)
        out = _to_uint8(_sample(flat, height, width, x, y, interpolation))
    else:
        rr, cc = _clamped_pixels((a0, a1, a2, b0, b1, b2), h, w, height, width)
        if rr.size:
            fr, fc = rr.astype(np.float64), cc.astype(np.float64)
            x = np.clip(a0 * fc + a1 * fr + a2, 0, width - 1)
            y = np.clip(b0 * fc + b1 * fr + b2, 0, height - 1)
            out[rr, cc] = _to_uint8(_sample(flat, height, width, x, y, interpolation))
    return out[..., 0] if squeeze else out


def _clamped_pixels(affine, h, w, height, width):
    """Row and column indices of the output pixels whose sampling point falls outside the image (or
    within 1e-6 of its edge, where Pillow's and the clamped sampling could part): per output row the points
    inside form one interval of columns, found from the affine map without evaluating it at every pixel."""
    a0, a1, a2, b0, b1, b2 = affine
    rows = np.arange(h, dtype=np.float64)
    lo, hi = np.full(h, 0.0), np.full(h, w - 1.0)
    eps = 1e-6
    for slope, offset, limit in ((a0, a1 * rows + a2, width - 1.0), (b0, b1 * rows + b2, height - 1.0)):
        # eps <= slope * c + offset <= limit - eps
        if abs(slope) < 1e-12:
            bad = (offset < eps) | (offset > limit - eps)
            lo = np.where(bad, np.inf, lo)
            continue
        first, second = (eps - offset) / slope, (limit - eps - offset) / slope
        lo = np.maximum(lo, np.minimum(first, second))
        hi = np.minimum(hi, np.maximum(first, second))
    cols = np.arange(w, dtype=np.float64)[None, :]
    outside = (cols < lo[:, None]) | (cols > hi[:, None])
    return np.nonzero(outside)


def _warp_pillow(image, affine, h, w, corners_x, corners_y, interpolation):
    """``Image.transform`` on the window of ``image`` whose pixels the (clamped) sampling points read."""
    from PIL import Image
    height, width = image.shape[:2]
    a0, a1, a2, b0, b1, b2 = affine

    def span(lo, hi, size):  # clamped points in [lo, hi] read pixels floor(lo) - 1 .. floor(hi) + 2
        lo, hi = min(max(lo, 0.0), size - 1.0), min(max(hi, 0.0), size - 1.0)
        return max(int(np.floor(lo)) - 1, 0), min(int(np.floor(hi)) + 3, size)

    c0, c1 = span(min(corners_x), max(corners_x), width)
    r0, r1 = span(min(corners_y), max(corners_y), height)
    window = image[r0:r1, c0:c1]
    source = Image.fromarray(np.ascontiguousarray(window[..., 0] if image.shape[2] == 1 else window))
    # Pillow samples output pixel centres (x + 0.5, y + 0.5) at input coordinates whose pixel centres are at
    # +0.5; in pixel indices of the window that is a0 x + a1 y + a2 - c0 (and likewise for y).
    data = (a0, a1, a2 - c0 + 0.5 - 0.5 * (a0 + a1), b0, b1, b2 - r0 + 0.5 - 0.5 * (b0 + b1))
    resample = getattr(Image.Resampling, _PIL_FILTERS[interpolation])
    out = np.asarray(source.transform((w, h), Image.Transform.AFFINE, data, resample=resample))
    return out.reshape(h, w, image.shape[2]).copy()


def _warp_tf(image, inverse, h: int, w: int, interpolation: str):
    """``warp_numpy`` in TensorFlow: (H, W, C) uint8 and float64 ``inverse`` -> float32 (h, w, C) of whole
    numbers in [0, 255]. Coordinates and weights are float64 as in Pillow: in float32, interpolated values that
    are whole numbers (flat regions) land just below them about once in 10,000 and truncate one level lower."""
    import tensorflow as tf
    image = tf.cast(image, tf.float64)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    ys, xs = tf.meshgrid(tf.range(h, dtype=tf.float64), tf.range(w, dtype=tf.float64), indexing="ij")
    x = tf.clip_by_value(inverse[0] * xs + inverse[1] * ys + inverse[2], 0.0, tf.cast(width - 1, tf.float64))
    y = tf.clip_by_value(inverse[3] * xs + inverse[4] * ys + inverse[5], 0.0, tf.cast(height - 1, tf.float64))
    x0i, y0i = tf.cast(tf.floor(x), tf.int32), tf.cast(tf.floor(y), tf.int32)
    flat = tf.reshape(image, [-1, tf.shape(image)[2]])

    def read(dy, dx):
        rows, cols = tf.clip_by_value(y0i + dy, 0, height - 1), tf.clip_by_value(x0i + dx, 0, width - 1)
        return tf.gather(flat, rows * width + cols)

    out = _interpolate(read, x, y, tf.floor, interpolation)
    return tf.cast(tf.floor(tf.clip_by_value(out, 0.0, 255.0)), tf.float32)


# The downscaled crop is rounded half up with a margin: averages of whole numbers are often exactly x.5, where
# float32 round-off would otherwise decide the 8-bit value differently in numpy and in TensorFlow.
ROUND_UP = 0.5 + 2.0 ** -12


def _align_numpy(image, inverse, h, w, k, method, antialias, fill_mode, interpolation):
    warped = warp_numpy(image, inverse, (h * k, w * k), fill_mode, interpolation)
    if k == 1:
        return warped
    warped = resize_numpy(warped.astype(np.float32), (h, w), method, antialias)
    return np.clip(np.floor(warped + ROUND_UP), 0.0, 255.0).astype(np.uint8)


def _aligner(h, w, k, method, antialias, fill_mode, interpolation):
    import tensorflow as tf
    key = (h, w, k, method, antialias, fill_mode, interpolation)
    if interpolation == "bicubic" and fill_mode != "nearest":
        raise ValueError(f"bicubic alignment implements fill_mode 'nearest' only, got {fill_mode!r}")
    if key not in _ALIGNERS:
        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([8], tf.float64)])
        def align(image, inverse):
            warped = _warp_tf(image, inverse, h * k, w * k, interpolation)
            if k > 1:
                warped = tf.floor(tf.image.resize(warped, (h, w), method=method, antialias=antialias) + ROUND_UP)
            return tf.cast(tf.clip_by_value(warped, 0.0, 255.0), tf.uint8)

        _ALIGNERS[key] = align
    return _ALIGNERS[key]


def _warp(image, src, dst, size, fill_mode):
    """Bilinear warp of ``image`` by the similarity taking ``src`` points onto ``dst``, at ``size``."""
    import tensorflow as tf
    image = tf.cast(tf.convert_to_tensor(image), tf.float32)
    matrix = similarity_transform(src, dst)
    a, b = matrix[0, 0], matrix[1, 0]
    tx, ty = matrix[0, 2], matrix[1, 2]
    det = a * a + b * b
    ia, ib = a / det, b / det
    inverse = tf.stack([ia, ib, -(ia * tx + ib * ty), -ib, ia, ib * tx - ia * ty, 0.0, 0.0])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=inverse[None], output_shape=[int(size[0]), int(size[1])], fill_value=0.0,
        interpolation="BILINEAR", fill_mode=fill_mode.upper())[0]
    return out
