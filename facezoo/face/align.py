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
    resized the training images; a bilinear warp straight to a small input would alias. The warp and resize
    run as one compiled graph per scale step (a few per model), so a face costs well under a millisecond.

    Args:
        image: (H, W, 3) uint8 RGB image.
        landmarks: (5, 2) landmarks (left eye, right eye, nose, mouth corners), pixel indices of ``image``.
        spec: the model's ``facezoo.preprocessing.PreprocessSpec``; its ``framing`` must be known.
        fill_mode: how pixels outside the image are filled (``nearest``: repeat the edge).
        engine: ``"tensorflow"`` (one compiled graph per scale step) or ``"numpy"`` (the same warp and resize in
            numpy, for the exported-graph backends and installs without TensorFlow; ``nearest`` fill only).
        interpolation: ``"bicubic"`` (Keys, a = -0.5) or ``"bilinear"`` between source pixels; None (default):
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
    return fn(tf.convert_to_tensor(np.asarray(image, np.uint8)), tf.constant(inverse, tf.float32)).numpy()


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


KEYS_A = -0.5


def keys_weights(f, a: float = KEYS_A) -> list:
    """Keys' cubic convolution weights of the 4 taps at -1, 0, 1, 2 pixels for a fractional offset ``f`` in [0, 1).

    The kernel is ``(a+2)|t|^3 - (a+3)|t|^2 + 1`` for ``|t| <= 1`` and ``a|t|^3 - 5a|t|^2 + 8a|t| - 4a`` for
    ``1 < |t| < 2``; the taps sit at distances ``1 + f``, ``f``, ``1 - f``, ``2 - f``. The weights sum to 1.
    """
    def near(t):
        return ((a + 2) * t - (a + 3)) * t * t + 1

    def far(t):
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a

    return [far(1 + f), near(f), near(1 - f), far(2 - f)]


def warp_numpy(image, inverse, output_hw, fill_mode: str = "nearest", interpolation: str = "bilinear") -> np.ndarray:
    """An affine warp in numpy: ``tf.raw_ops.ImageProjectiveTransformV3`` (``nearest`` fill) for ``bilinear``.

    Output pixel (x, y) reads the input at ``(a0 x + a1 y + a2, b0 x + b1 y + b2)`` (the first six of the 8
    transform numbers), coordinates clamped to the image (the edge repeats), then interpolated between the 4
    (``bilinear``) or 16 (``bicubic``, Keys a = -0.5; neighbours past the edge read the edge) nearest pixels.
    """
    if fill_mode != "nearest":
        raise ValueError(f"the numpy warp implements fill_mode 'nearest' only, got {fill_mode!r}")
    image = np.asarray(image)
    height, width = image.shape[:2]
    # Gathered pixels are converted, not the whole image: a large photo costs no more than a small one.
    flat = image.reshape(height * width, -1)
    h, w = int(output_hw[0]), int(output_hw[1])
    a0, a1, a2, b0, b1, b2 = (np.float32(v) for v in inverse[:6])
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    x = np.clip(a0 * xs + a1 * ys + a2, 0, width - 1)
    y = np.clip(b0 * xs + b1 * ys + b2, 0, height - 1)
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    x0i, y0i = x0.astype(np.int64), y0.astype(np.int64)

    def pixels(rows, cols):
        return np.take(flat, rows * width + cols, axis=0).astype(np.float32)

    if interpolation == "bicubic":
        wx, wy = keys_weights(fx), keys_weights(fy)
        cols = [np.clip(x0i + i, 0, width - 1) for i in range(-1, 3)]
        out = np.zeros((h, w, flat.shape[1]), np.float32)
        for j in range(4):
            rows = np.clip(y0i + j - 1, 0, height - 1)
            out += wy[j] * sum(wx[i] * pixels(rows, cols[i]) for i in range(4))
        return out
    # A neighbour past the last pixel has weight 0 (the coordinate was clamped onto the edge): read the edge.
    x1i, y1i = np.minimum(x0i + 1, width - 1), np.minimum(y0i + 1, height - 1)
    top = (1 - fx) * pixels(y0i, x0i) + fx * pixels(y0i, x1i)
    bottom = (1 - fx) * pixels(y1i, x0i) + fx * pixels(y1i, x1i)
    return ((1 - fy) * top + fy * bottom).astype(np.float32)


def _warp_bicubic_tf(image, inverse, h: int, w: int):
    """``warp_numpy(..., interpolation="bicubic")`` in TensorFlow: (H, W, C) float32 -> (h, w, C)."""
    import tensorflow as tf
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    ys, xs = tf.meshgrid(tf.range(h, dtype=tf.float32), tf.range(w, dtype=tf.float32), indexing="ij")
    x = tf.clip_by_value(inverse[0] * xs + inverse[1] * ys + inverse[2], 0.0, tf.cast(width - 1, tf.float32))
    y = tf.clip_by_value(inverse[3] * xs + inverse[4] * ys + inverse[5], 0.0, tf.cast(height - 1, tf.float32))
    x0, y0 = tf.floor(x), tf.floor(y)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    x0i, y0i = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    flat = tf.reshape(image, [-1, tf.shape(image)[2]])

    wx, wy = keys_weights(fx), keys_weights(fy)
    cols = [tf.clip_by_value(x0i + i, 0, width - 1) for i in range(-1, 3)]
    out = 0.0
    for j in range(4):
        base = tf.clip_by_value(y0i + j - 1, 0, height - 1) * width
        out += wy[j] * sum(wx[i] * tf.gather(flat, base + cols[i]) for i in range(4))
    return out


def _align_numpy(image, inverse, h, w, k, method, antialias, fill_mode, interpolation):
    warped = warp_numpy(image, inverse, (h * k, w * k), fill_mode, interpolation)
    if k > 1:
        warped = resize_numpy(warped, (h, w), method, antialias)
    return np.clip(np.round(warped), 0.0, 255.0).astype(np.uint8)


def _aligner(h, w, k, method, antialias, fill_mode, interpolation):
    import tensorflow as tf
    key = (h, w, k, method, antialias, fill_mode, interpolation)
    if interpolation == "bicubic" and fill_mode != "nearest":
        raise ValueError(f"bicubic alignment implements fill_mode 'nearest' only, got {fill_mode!r}")
    if key not in _ALIGNERS:
        @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([8], tf.float32)])
        def align(image, inverse):
            if interpolation == "bicubic":
                warped = _warp_bicubic_tf(tf.cast(image, tf.float32), inverse, h * k, w * k)
            else:
                warped = tf.raw_ops.ImageProjectiveTransformV3(
                    images=tf.cast(image, tf.float32)[None], transforms=inverse[None], output_shape=[h * k, w * k],
                    fill_value=0.0, interpolation="BILINEAR", fill_mode=fill_mode.upper())[0]
            if k > 1:
                warped = tf.image.resize(warped, (h, w), method=method, antialias=antialias)
            return tf.cast(tf.clip_by_value(tf.round(warped), 0.0, 255.0), tf.uint8)

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
