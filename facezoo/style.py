"""Neural style transfer (Gatys et al. 2016) on a face trunk's features.

An image G is optimised so that its features at one deep layer match those of a content image C and
the Gram matrices of its features at several layers match those of a style image S:

    J(G) = content_weight * J_content(C, G) + style_weight * J_style(S, G)
    J_content = mean over positions and channels of (a_C - a_G)^2                      (one layer)
    J_style   = sum over layers l of w_l * mean over (i, j) of (Gram_S[i, j] - Gram_G[i, j])^2
    Gram[i, j] = sum over positions p of a[p, i] * a[p, j] / (H * W)                    (channel correlations)

The features are those of our own trunk (default: the shipped ``dmtl_celeba`` model's ResNet-18,
rebuilt for any image size with its weights), not ImageNet VGG-19 as in the paper, which cannot be
downloaded here; any Keras model with named layers taking images in [-1, 1] can replace it
(``StyleFeatures(model=...)``). A face-attribute trunk has seen faces only, so textures transfer less
richly than with VGG; the costs still fall as in the paper.

``transfer`` starts from the content image (plus uniform noise, ``noise_ratio``; 1.0 is the paper's white
noise start) and takes L-BFGS steps (two-loop recursion with a backtracking line search, on
``tanh``-parameterised pixels so they stay in range) or Adam steps on the pixels (kept in [-1, 1]). A
total-variation term (``variation_weight``, as in Johnson et al. 2016) keeps the result free of pixel noise,
which a face trunk's features barely see.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from facezoo.errors import UsageError

CONTENT_LAYER = "conv4_block2_out"
# The first convolution of each stage, before BatchNorm and ReLU: after them (the ``_out`` layers) coloured
# pixel noise matches the Gram matrices of this trunk about as well as the style's texture does.
STYLE_LAYERS = ("conv1_conv", "conv2_block1_1_conv", "conv3_block1_1_conv", "conv4_block1_1_conv")
OPTIMIZERS = ("lbfgs", "adam")


def gram_matrix(features):
    """``(B, H, W, C)`` features -> ``(B, C, C)`` Gram matrices divided by ``H * W``."""
    import tensorflow as tf
    shape = tf.shape(features)
    flat = tf.reshape(features, [shape[0], shape[1] * shape[2], shape[3]])
    return tf.matmul(flat, flat, transpose_a=True) / tf.cast(shape[1] * shape[2], features.dtype)


def content_cost(content_features, generated_features):
    """Mean squared difference of two feature maps."""
    import tensorflow as tf
    return tf.reduce_mean(tf.square(content_features - generated_features))


def style_cost(style_grams, generated_features, weights=None):
    """Weighted sum over layers of the mean squared difference of Gram matrices (equal weights by default)."""
    import tensorflow as tf
    weights = weights or [1.0 / len(style_grams)] * len(style_grams)
    return tf.add_n([w * tf.reduce_mean(tf.square(gram_matrix(g) - s))
                     for w, s, g in zip(weights, style_grams, generated_features)])


def variation_cost(image):
    """Total variation: mean squared difference of neighbouring pixels (keeps the result free of pixel noise)."""
    import tensorflow as tf
    return (tf.reduce_mean(tf.square(image[:, 1:] - image[:, :-1]))
            + tf.reduce_mean(tf.square(image[:, :, 1:] - image[:, :, :-1])))


class StyleFeatures:
    """Content and style features of images in [-1, 1] from one network.

    Args:
        model: a shipped attribute model's name (default ``dmtl_celeba``; its trunk is used), a loaded runtime, or
            a Keras model accepting any image size.
        content_layer: layer whose activations the content cost compares.
        style_layers: layers whose Gram matrices the style cost compares.
    """

    def __init__(self, model="dmtl_celeba", content_layer: str = CONTENT_LAYER, style_layers=STYLE_LAYERS):
        import keras
        import tensorflow as tf
        if isinstance(model, str):
            import facezoo
            model = facezoo.load(model, backend="keras")
        net = getattr(model, "model", model)
        if hasattr(net, "dmtl_config"):
            from facezoo.models.dmtl import any_size_trunk
            net = any_size_trunk(net)
        names = {layer.name for layer in net.layers}
        style_layers = tuple(style_layers)
        missing = [n for n in (content_layer, *style_layers) if n not in names]
        if missing or not style_layers:
            raise UsageError(f"style features: {net.name} has no layer(s) {missing or 'for the style'}; "
                             f"its layers ending in _out: {sorted(n for n in names if n.endswith('_out'))}")
        self.content_layer, self.style_layers = content_layer, style_layers
        outputs = [net.get_layer(n).output for n in (content_layer, *style_layers)]
        self.network = keras.Model(net.inputs, outputs, name=f"{net.name}_style_features")
        self._forward = tf.function(lambda x: self.network(x, training=False), reduce_retracing=True)

    def __call__(self, image):
        """``(1, H, W, 3)`` in [-1, 1] -> ``(content features, [style features per layer])``."""
        out = self._forward(image)
        return out[0], list(out[1:])


@dataclasses.dataclass
class TransferResult:
    """``image`` uint8 ``(H, W, 3)``; per-step ``history`` of ``{"step", "content", "style", "total"}`` (weighted
    costs, the first row before any step)."""

    image: np.ndarray
    history: list


def _to_input(image, size):
    import tensorflow as tf

    from facezoo.images import load_image
    pixels = load_image(image)
    h, w = pixels.shape[:2]
    if size:
        scale = size / max(h, w)
        h, w = max(8, round(h * scale)), max(8, round(w * scale))
    x = tf.image.resize(tf.constant(pixels[None], tf.float32), (h, w), method="bicubic", antialias=True)
    return tf.clip_by_value(x / 127.5 - 1.0, -1.0, 1.0)


def transfer(content, style, *, features: StyleFeatures | None = None, steps: int = 200, size: int = 128,
             content_weight: float = 1.0, style_weight: float = 100.0, variation_weight: float = 10.0,
             learning_rate: float = 0.02,
             optimizer: str = "lbfgs", noise_ratio: float = 0.0, seed: int = 0, progress: bool = False,
             callback=None) -> TransferResult:
    """Paints ``content`` in the style of ``style``.

    Args:
        content, style: images (paths, arrays, PIL images, bytes); the style image is resized to the
            content image's size.
        features: the feature network (default ``StyleFeatures()``: ``dmtl_celeba``'s trunk).
        steps: optimisation steps.
        size: longest side of the result (0: the content image's size).
        content_weight, style_weight: alpha and beta of the total cost.
        variation_weight: weight of ``variation_cost`` in the total (0: Gatys et al.'s cost alone).
        learning_rate: Adam's step size on pixels in [-1, 1].
        optimizer: ``lbfgs`` or ``adam``.
        noise_ratio: the start is ``(1 - r) * content + r * uniform noise``.
        seed: seed of the noise.
        progress: show a progress bar.
        callback: called as ``callback(step, image uint8)`` every step.

    Returns:
        ``TransferResult`` with the image and the costs per step.
    """
    import tensorflow as tf
    if optimizer not in OPTIMIZERS:
        raise UsageError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise UsageError(f"steps must be an int >= 0, got {steps!r}")
    if not 0.0 <= noise_ratio <= 1.0:
        raise UsageError(f"noise_ratio must be in [0, 1], got {noise_ratio}")
    features = features or StyleFeatures()
    c = _to_input(content, size)
    s = tf.image.resize(_to_input(style, 0), tf.shape(c)[1:3], method="bicubic", antialias=True)
    target_content, _ = features(c)
    _, style_maps = features(s)
    style_grams = [gram_matrix(m) for m in style_maps]
    noise = tf.constant(np.random.default_rng(seed).uniform(-1, 1, c.shape), tf.float32)
    start = (1.0 - noise_ratio) * c + noise_ratio * noise

    def costs(image):
        content_map, maps = features(image)
        jc = content_weight * content_cost(target_content, content_map)
        js = style_weight * style_cost(style_grams, maps)
        return jc, js, variation_weight * variation_cost(image)

    def row(step, jc, js, jv):
        return {"step": step, "content": float(jc), "style": float(js), "variation": float(jv),
                "total": float(jc + js + jv)}

    from tqdm.auto import tqdm
    bar = tqdm(total=steps, desc="style transfer", unit="step", disable=not progress)
    history = []
    if optimizer == "adam":
        image = tf.Variable(start)
        import keras
        opt = keras.optimizers.Adam(learning_rate)

        @tf.function
        def adam_step():
            with tf.GradientTape() as tape:
                total = tf.add_n(costs(image))
            opt.apply_gradients([(tape.gradient(total, image), image)])
            image.assign(tf.clip_by_value(image, -1.0, 1.0))

        history.append(row(0, *costs(image)))
        for step in range(1, steps + 1):
            adam_step()
            history.append(row(step, *costs(image)))
            bar.update(1)
            bar.set_postfix(total=f"{history[-1]['total']:.4g}")
            if callback:
                callback(step, _to_uint8(image))
        result = image
    else:
        result = _lbfgs(costs, start, steps, history, row, bar, callback)
    bar.close()
    return TransferResult(_to_uint8(result), history)


def _to_uint8(image) -> np.ndarray:
    return np.clip(np.round((np.asarray(image)[0] + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _lbfgs(costs, start, steps, history, row, bar, callback, memory: int = 10):
    """L-BFGS on ``u`` with image ``tanh(u)``: two-loop recursion, Armijo backtracking."""
    import tensorflow as tf
    shape = start.shape
    u0 = np.arctanh(np.clip(start.numpy(), -0.999, 0.999)).astype(np.float64).reshape(-1)

    @tf.function
    def value_and_grad(u):
        u = tf.reshape(tf.cast(u, tf.float32), shape)
        with tf.GradientTape() as tape:
            tape.watch(u)
            parts = costs(tf.tanh(u))
            total = tf.add_n(parts)
        return parts, tf.reshape(tape.gradient(total, u), [-1])

    def evaluate(u):
        parts, g = value_and_grad(tf.constant(u))
        return [float(p) for p in parts], g.numpy().astype(np.float64)

    u = u0
    parts, g = evaluate(u)
    history.append(row(0, *parts))
    s_list, y_list = [], []
    for step in range(1, steps + 1):
        q = g.copy()
        alphas = []
        for s, y in reversed(list(zip(s_list, y_list))):
            a = s @ q / (y @ s)
            alphas.append(a)
            q -= a * y
        if s_list:
            q *= (s_list[-1] @ y_list[-1]) / (y_list[-1] @ y_list[-1])
        for (s, y), a in zip(zip(s_list, y_list), reversed(alphas)):
            q += (a - y @ q / (y @ s)) * s
        direction = -q
        if direction @ g >= 0:  # not a descent direction: restart from the gradient
            s_list, y_list, direction = [], [], -g
        total = sum(parts)
        t = 1.0 if s_list else min(1.0, 1.0 / max(np.abs(g).max(), 1e-12))
        for _ in range(20):  # Armijo backtracking
            new = u + t * direction
            new_parts, ng = evaluate(new)
            if sum(new_parts) <= total + 1e-4 * t * (g @ direction):
                break
            t *= 0.5
        else:
            break  # no decrease found: stop
        s, y = new - u, ng - g
        if s @ y > 1e-10:
            s_list.append(s)
            y_list.append(y)
            if len(s_list) > memory:
                s_list.pop(0)
                y_list.pop(0)
        u, g, parts = new, ng, new_parts
        history.append(row(step, *parts))
        bar.update(1)
        bar.set_postfix(total=f"{sum(parts):.4g}")
        if callback:
            callback(step, _to_uint8(np.tanh(u).reshape(shape)))
    return np.tanh(u).reshape(shape)


def procedural_style(size: int = 256, seed: int = 0) -> np.ndarray:
    """A style image of our own: uint8 ``(size, size, 3)`` swirling brush-stroke bands in warm and cool colours.

    Made by this function (no data set, no artwork): interfering sinusoids warped by a low-frequency
    field, quantised to a small palette, with dark outlines between colour regions — strong,
    multi-scale texture for the Gram matrices to carry.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    warp = sum(np.sin(2 * np.pi * (f * x + g * y) + p) / f
               for f, g, p in zip(rng.uniform(1, 3, 4), rng.uniform(1, 3, 4), rng.uniform(0, 2 * np.pi, 4)))
    field = np.sin(14 * np.pi * (x + 0.15 * warp)) + np.sin(11 * np.pi * (y - 0.2 * warp) + 3 * x)
    palette = np.array([[24, 40, 92], [40, 110, 170], [236, 196, 72], [214, 96, 38], [250, 240, 210],
                        [90, 150, 90]], np.float64)
    level = np.clip(((field + 2) / 4 * len(palette)).astype(int), 0, len(palette) - 1)
    image = palette[level]
    edges = (np.abs(np.diff(level, axis=0, prepend=level[:1])) + np.abs(np.diff(level, axis=1, prepend=level[:, :1])))
    image[edges > 0] *= 0.35
    image += rng.normal(0, 6, image.shape)  # canvas grain
    return np.clip(image, 0, 255).astype(np.uint8)
