"""Metrics of the face generators: FD-facezoo, attribute hit rate, PSNR / SSIM of super-resolution.

**FD-facezoo** is the Fréchet distance (Heusel et al. 2017) between Gaussians fitted to the pooled trunk
features of two image sets, ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))``. The features come
from a face trunk (``TrunkFeatures``; by default the global-average-pool output of the shipped
``dmtl_celeba`` model, 256 numbers per face) instead of ImageNet Inception-v3, so its values are **not
comparable with published FID figures**, nor between two feature extractors. Its floor is the distance
between two disjoint halves of the validation faces ("real vs real"), reported with every figure: a
generator is as good as this metric can tell when its FD comes close to that floor. FD is biased upwards
for small sets, so compare figures measured on sets of the same size (the evaluator uses one half of the
validation faces as reference, the other half as the floor, and as many generated faces).

**Attribute hit rate** (conditional generators): for each conditioned attribute the recognising model
(``dmtl_celeba``) is asked whether faces generated with the attribute on show it (``hit_rate_on``), and
whether faces generated from the same noise and other conditions with it off do not (``hit_rate_off``).
``real_recall`` is the same model's rate on validation faces labelled with the attribute, through the same
resizing: the ceiling a generator can be recognised at.

**PSNR / SSIM** (super-resolution) on RGB 8-bit images: the validation faces (high resolution) are
downscaled (bicubic, antialiased; 8-bit, as a user's file would be), restored by the model and by bicubic
upsampling, and both compared with the original. SSIM is ``tf.image.ssim`` (11×11 Gaussian window,
sigma 1.5, K1 0.01, K2 0.03) averaged over the three channels.

The generated faces are square crops of CelebA's aligned faces (``fit_to_input``'s centre crop). To show
them to a model trained on the whole aligned image (109×89 for ``dmtl_celeba``) ``to_model_framing``
resizes the square to the model's width and pads the missing rows by repeating the edge, which puts the
face back where the model saw faces in training.
"""
from __future__ import annotations

import json
import os

import numpy as np

from facezoo.errors import UsageError

FEATURE_LAYER = "trunk_pool"
DEFAULT_TRUNK = "dmtl_celeba"
DEFAULT_ATTRIBUTE_MODEL = "dmtl_celeba"


# ----------------------------------------------------------------------------- numbers
def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64, unbiased) of ``(N, D)`` features; needs N >= 2."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise UsageError(f"features must be (N >= 2, D), got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _psd_sqrt(matrix):
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu_a, cov_a, mu_b, cov_b) -> float:
    """Fréchet distance of two Gaussians ``N(mu_a, cov_a)`` and ``N(mu_b, cov_b)``.

    ``Tr((S_a S_b)^(1/2))`` is computed as the sum of square roots of the eigenvalues of the symmetric
    ``S_a^(1/2) S_b S_a^(1/2)`` (similar to ``S_a S_b``), which stays real for singular covariances.
    """
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.atleast_2d(cov_a).astype(np.float64), np.atleast_2d(cov_b).astype(np.float64)
    root = _psd_sqrt(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ cov_b @ root), 0, None)).sum()
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)
    return max(value, 0.0)


def feature_frechet_distance(features_a, features_b) -> float:
    """``frechet_distance`` of the Gaussians fitted to two ``(N, D)`` feature sets."""
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))


def _as_uint8_batch(images, name):
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3:
        raise UsageError(f"{name}: expected RGB images (N, H, W, 3), got shape {a.shape}")
    if a.dtype != np.uint8:
        raise UsageError(f"{name}: expected uint8 pixels, got {a.dtype}")
    return a


def psnr_rgb(images, references) -> np.ndarray:
    """Per-image PSNR in dB of uint8 RGB ``images`` against ``references`` (peak 255; identical: inf)."""
    a = _as_uint8_batch(images, "images").astype(np.float64)
    b = _as_uint8_batch(references, "references").astype(np.float64)
    if a.shape != b.shape:
        raise UsageError(f"images {a.shape} and references {b.shape} differ in shape")
    mse = np.mean((a - b) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0 ** 2 / mse)


def ssim_rgb(images, references) -> np.ndarray:
    """Per-image SSIM of uint8 RGB ``images`` against ``references`` (mean over channels; identical: 1)."""
    import tensorflow as tf
    a = _as_uint8_batch(images, "images")
    b = _as_uint8_batch(references, "references")
    if a.shape != b.shape:
        raise UsageError(f"images {a.shape} and references {b.shape} differ in shape")
    return tf.image.ssim(tf.constant(a, tf.float32), tf.constant(b, tf.float32), max_val=255.0).numpy()


def to_uint8(images) -> np.ndarray:
    """Images in [-1, 1] -> uint8 pixels (rounded, clipped)."""
    return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def to_model_framing(images, input_size) -> np.ndarray:
    """Square face crops ``(N, S, S, 3)`` uint8 -> ``(N, H, W, 3)`` float in [0, 255] for a model of
    ``input_size`` ``(H, W)`` trained on whole aligned images (see the module docstring)."""
    import tensorflow as tf
    h, w = int(input_size[0]), int(input_size[1])
    side = min(h, w)
    x = tf.image.resize(tf.constant(np.asarray(images), tf.float32), (side, side), method="bicubic",
                        antialias=True)
    x = tf.clip_by_value(x, 0.0, 255.0)
    top, left = (h - side) // 2, (w - side) // 2
    if max(h, w) > 2 * side:
        raise UsageError(f"to_model_framing: input size {h}x{w} is more than twice as long as it is wide")
    paddings = [[0, 0], [top, h - side - top], [left, w - side - left], [0, 0]]
    return tf.pad(x, paddings, mode="SYMMETRIC").numpy()


# ----------------------------------------------------------------------------- feature extractors
def _keras_of(model):
    """A Keras model from a shipped model name, a runtime object with ``.model``, or a Keras model."""
    if isinstance(model, str):
        import facezoo
        return facezoo.load(model, backend="keras", fold_batchnorm=False).model
    return getattr(model, "model", model)


class TrunkFeatures:
    """Pooled trunk features of face crops: the feature space of FD-facezoo.

    Args:
        model: a shipped model name (default ``dmtl_celeba``), a loaded runtime (``facezoo.load(...)``) or a
            Keras model taking images in [-1, 1]; any trunk can replace the default (e.g. a distilled one).
        layer: name of the feature layer (default ``trunk_pool``, else the last global pooling layer).
        input_size: ``(H, W)`` of the model input (default: read from the model).
        batch_size: images per forward pass.
    """

    def __init__(self, model=DEFAULT_TRUNK, layer: str | None = None, input_size=None, batch_size: int = 64):
        import keras
        import tensorflow as tf
        net = _keras_of(model)
        self.name = model if isinstance(model, str) else getattr(getattr(model, "card", None), "name", net.name)
        names = [layer_.name for layer_ in net.layers]
        if layer is None:
            pools = [lay.name for lay in net.layers
                     if isinstance(lay, (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D))]
            layer = FEATURE_LAYER if FEATURE_LAYER in names else (pools[-1] if pools else None)
            if layer is None:
                raise UsageError(f"{self.name}: no global pooling layer to take features from; name one (layer=)")
        if layer not in names:
            raise UsageError(f"{self.name}: no layer {layer!r}")
        self.layer = layer
        self.extractor = keras.Model(net.inputs, net.get_layer(layer).output, name=f"{net.name}_features")
        self.input_size = tuple(input_size or net.input_shape[1:3])
        self.batch_size = batch_size
        self._forward = tf.function(lambda x: self.extractor(x, training=False), reduce_retracing=True)

    @property
    def dim(self) -> int:
        return int(self.extractor.output.shape[-1])

    def __call__(self, images) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 square face crops -> ``(N, D)`` float32 features."""
        images = _as_uint8_batch(images, "images")
        out = []
        for start in range(0, len(images), self.batch_size):
            x = to_model_framing(images[start:start + self.batch_size], self.input_size) / 127.5 - 1.0
            out.append(np.asarray(self._forward(x.astype(np.float32))).reshape(len(x), -1))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


class AttributeRecogniser:
    """The binary attribute decisions of a DMTL attribute model (default ``dmtl_celeba``) on face crops."""

    def __init__(self, model=DEFAULT_ATTRIBUTE_MODEL, batch_size: int = 64):
        import facezoo
        self.runtime = facezoo.load(model) if isinstance(model, str) else model
        self.name = self.runtime.card.name
        self.batch_size = batch_size
        self.attributes = [spec.attribute.name for _ds, spec, _n in self.runtime.heads
                           if spec.attribute.kind == "binary"]
        self._outputs = {spec.attribute.name: name for _ds, spec, name in self.runtime.heads}

    def present(self, images, attributes) -> dict:
        """``{attribute: (N,) bool}``: the model's decision (probability >= its card's threshold)."""
        import tensorflow as tf
        unknown = [a for a in attributes if a not in self.attributes]
        if unknown:
            raise UsageError(f"{self.name} does not recognise {unknown}; it knows {self.attributes}")
        images = _as_uint8_batch(images, "images")
        probs = {a: [] for a in attributes}
        for start in range(0, len(images), self.batch_size):
            x = to_model_framing(images[start:start + self.batch_size], self.runtime.input_size)
            logits = self.runtime.logits(self.runtime.spec.normalize(tf.constant(x, tf.float32)).numpy())
            for a in attributes:
                probs[a].append(1.0 / (1.0 + np.exp(-np.asarray(logits[self._outputs[a]], np.float64).reshape(-1))))
        thresholds = self.runtime.card.thresholds
        return {a: np.concatenate(p) >= thresholds.get(a, 0.5) for a, p in probs.items()}


# ----------------------------------------------------------------------------- evaluations
def split_halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint index halves of ``range(n)`` (seeded permutation; the first gets the odd one)."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: (n + 1) // 2]), np.sort(order[(n + 1) // 2:])


def fd_facezoo(generated, real, features: TrunkFeatures | None = None, *, seed: int = 0) -> dict:
    """FD-facezoo of ``generated`` uint8 faces against half of ``real``, and the real-vs-real floor.

    ``real`` is split into two disjoint halves A and B (``split_halves``); the generated set is cut to
    the size of A. Returns ``fd_facezoo`` (generated vs A), ``fd_real_floor`` (B vs A), their sizes, the
    feature extractor and its dimension.
    """
    features = features or TrunkFeatures()
    real = _as_uint8_batch(real, "real images")
    generated = _as_uint8_batch(generated, "generated images")
    if len(real) < 4:
        raise UsageError(f"FD-facezoo needs at least 4 real images (two halves of >= 2), got {len(real)}")
    a, b = split_halves(len(real), seed)
    generated = generated[: len(a)]
    if len(generated) < 2:
        raise UsageError(f"FD-facezoo needs at least 2 generated images, got {len(generated)}")
    fa = features(real[a])
    return {"fd_facezoo": feature_frechet_distance(features(generated), fa),
            "fd_real_floor": feature_frechet_distance(features(real[b]), fa),
            "n_generated": int(len(generated)), "n_reference": int(len(a)), "n_floor": int(len(b)),
            "feature_extractor": f"{features.name}:{features.layer}", "feature_dim": features.dim}


def attribute_hit_rates(generator, conditions, recogniser: AttributeRecogniser, *, n: int = 200, seed: int = 0,
                        priors: dict | None = None, real_images=None, real_labels: dict | None = None) -> dict:
    """How often ``recogniser`` sees each conditioned attribute in generated faces.

    Args:
        generator: has ``noise(n, rng) -> (n, latent)`` and ``generate(noise, condition (n, C)) -> uint8 faces``
            (a ``facezoo.inference.generation.FaceGenerator``).
        conditions: the generator's condition names, in order.
        recogniser: the attribute model.
        n: faces generated per attribute and setting (on / off).
        seed: seed of the noise and of the other attributes' settings.
        priors: probability of each other attribute being on (default 0.5).
        real_images, real_labels: validation faces and their 0/1 labels, for ``real_recall``.

    Returns:
        ``{attribute: {"hit_rate_on", "hit_rate_off", "hit_rate" (their mean), "n", "real_recall"?}}`` for
        the conditioned attributes the recogniser knows; the others are listed under ``"not_recognised"``.
    """
    rng = np.random.default_rng(seed)
    priors = priors or {}
    known = [c for c in conditions if c in recogniser.attributes]
    out: dict = {}
    for attr in known:
        index = list(conditions).index(attr)
        base = np.stack([rng.random(n) < priors.get(c, 0.5) for c in conditions], axis=1).astype(np.float32)
        noise = generator.noise(n, rng)
        on, off = base.copy(), base.copy()
        on[:, index], off[:, index] = 1.0, 0.0
        seen_on = recogniser.present(generator.generate(noise, on), [attr])[attr]
        seen_off = recogniser.present(generator.generate(noise, off), [attr])[attr]
        entry = {"hit_rate_on": float(seen_on.mean()), "hit_rate_off": float(1.0 - seen_off.mean()), "n": int(n)}
        entry["hit_rate"] = (entry["hit_rate_on"] + entry["hit_rate_off"]) / 2
        if real_images is not None and real_labels and attr in real_labels:
            positive = np.asarray(real_labels[attr]) > 0.5
            if positive.any():
                entry["real_recall"] = float(recogniser.present(real_images[positive], [attr])[attr].mean())
                entry["real_n"] = int(positive.sum())
        out[attr] = entry
    missing = [c for c in conditions if c not in known]
    if missing:
        out["not_recognised"] = missing
    return out


def super_resolution_scores(upscale_fn, hr_images, scale: int, batch_size: int = 64) -> dict:
    """PSNR and SSIM of ``upscale_fn`` and of bicubic upsampling on ``hr_images`` downscaled by ``scale``.

    Args:
        upscale_fn: ``uint8 (N, h, w, 3) -> uint8 (N, h * scale, w * scale, 3)``.
        hr_images: uint8 ``(N, H, W, 3)``, sides divisible by ``scale``.

    Returns:
        ``psnr``, ``ssim`` (the model), ``bicubic_psnr``, ``bicubic_ssim``, ``psnr_gain_db``, ``ssim_gain``, ``n``.
    """
    hr = _as_uint8_batch(hr_images, "high-resolution images")
    h, w = hr.shape[1:3]
    if h % scale or w % scale:
        raise UsageError(f"image sides {h}x{w} are not divisible by the scale {scale}")
    sums = {"psnr": 0.0, "ssim": 0.0, "bicubic_psnr": 0.0, "bicubic_ssim": 0.0}
    for start in range(0, len(hr), batch_size):
        batch = hr[start:start + batch_size]
        lr = degrade_downscale(batch, scale)
        sr = np.asarray(upscale_fn(lr))
        bic = bicubic_upscale(lr, scale)
        sums["psnr"] += float(np.sum(psnr_rgb(sr, batch)))
        sums["ssim"] += float(np.sum(ssim_rgb(sr, batch)))
        sums["bicubic_psnr"] += float(np.sum(psnr_rgb(bic, batch)))
        sums["bicubic_ssim"] += float(np.sum(ssim_rgb(bic, batch)))
    n = len(hr)
    out = {k: v / n for k, v in sums.items()}
    out.update(psnr_gain_db=out["psnr"] - out["bicubic_psnr"], ssim_gain=out["ssim"] - out["bicubic_ssim"], n=n)
    return out


def degrade_downscale(images, scale: int) -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` -> uint8 ``(N, H / scale, W / scale, 3)``: bicubic, antialiased (training's
    ``facezoo.models.gan.downscale``), then rounded to 8 bits."""
    import tensorflow as tf
    a = _as_uint8_batch(images, "images")
    h, w = a.shape[1:3]
    small = tf.image.resize(tf.constant(a, tf.float32), (h // scale, w // scale), method="bicubic", antialias=True)
    return np.clip(np.round(small.numpy()), 0, 255).astype(np.uint8)


def degrade(image, scale: int = 4, blur_sigma: float = 1.0, jpeg_quality: int | None = 30) -> bytes | np.ndarray:
    """A low-quality copy of one uint8 RGB image (thesis §4.2.3): Gaussian blur of ``blur_sigma`` pixels, bicubic
    (antialiased) downscaling by ``scale``, then JPEG at ``jpeg_quality``.

    Returns:
        The JPEG file's bytes, or the uint8 small image when ``jpeg_quality`` is None.
    """
    import io

    from PIL import Image, ImageFilter
    a = _as_uint8_batch(image, "image")[0]
    h, w = a.shape[:2]
    small_size = (max(1, round(h / scale)), max(1, round(w / scale)))
    im = Image.fromarray(a)
    if blur_sigma > 0:
        im = im.filter(ImageFilter.GaussianBlur(radius=blur_sigma))
    import tensorflow as tf
    small = tf.image.resize(tf.constant(np.asarray(im)[None], tf.float32), small_size, method="bicubic",
                            antialias=True)[0].numpy()
    small = np.clip(np.round(small), 0, 255).astype(np.uint8)
    if jpeg_quality is None:
        return small
    buffer = io.BytesIO()
    Image.fromarray(small).save(buffer, format="JPEG", quality=int(jpeg_quality))
    return buffer.getvalue()


def bicubic_upscale(images, scale: int) -> np.ndarray:
    """uint8 ``(N, h, w, 3)`` -> uint8 ``(N, h * scale, w * scale, 3)`` by bicubic interpolation."""
    import tensorflow as tf
    a = _as_uint8_batch(images, "images")
    h, w = a.shape[1:3]
    big = tf.image.resize(tf.constant(a, tf.float32), (h * scale, w * scale), method="bicubic")
    return np.clip(np.round(big.numpy()), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- data and entry points
def validation_faces(data_dir: str, image_size: int, val_percent: int, *, limit: int | None = None,
                     labels=()) -> tuple[np.ndarray, dict]:
    """CelebA validation faces as the GAN recipes see them: centre-cropped squares of ``image_size``.

    Returns ``(uint8 (N, S, S, 3), {attribute: (N,) 0/1})`` for the requested label names; the split is
    the recipes' (identity-disjoint, ``val_percent``).
    """
    import tensorflow as tf

    from facezoo.evaluation.report import evaluation_records
    from facezoo.images import load_image
    from facezoo.preprocessing import fit_to_input
    if not os.path.isdir(data_dir):
        from facezoo.errors import MissingDataError
        raise MissingDataError(f"data directory {data_dir} does not exist")
    records = evaluation_records("celeba", data_dir, "val", val_percent)
    if limit:
        records = records[:limit]
    fit = tf.function(lambda x: fit_to_input(x, (image_size, image_size)),
                      input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
    from tqdm.auto import tqdm
    images = np.stack([np.clip(np.round(fit(tf.constant(load_image(r.image, name=r.image))).numpy()), 0, 255)
                       .astype(np.uint8) for r in tqdm(records, desc="validation faces", unit="face",
                                                         disable=len(records) < 100)])
    return images, {a: np.array([r.labels.get(a, 0) for r in records], np.float32) for a in labels}


def evaluate_generator(model, data_dir: str, *, out: str | None = None, n: int | None = None, seed: int = 0,
                       hit_rate_n: int = 200, features=None, recogniser=None, val_percent: int | None = None,
                       directory: str | None = None) -> dict:
    """FD-facezoo (and, for a conditional generator, the attribute hit rates) of a shipped generator.

    Args:
        model: a shipped model name or a loaded ``facezoo.inference.generation.FaceGenerator``.
        data_dir: the CelebA root whose validation split (the card's ``val_percent``) is the reference.
        out: folder for ``metrics.json`` and ``samples.png`` (None: nothing written).
        n: validation faces used (default all).
        seed: seed of the halves, the noise and the conditions.
        hit_rate_n: faces per attribute and setting for the hit rates.
        features: a ``TrunkFeatures`` (default: ``dmtl_celeba``'s pooled trunk).
        recogniser: an ``AttributeRecogniser`` (default ``dmtl_celeba``).
        directory: the model's folder, for a generator not installed in the package.
    """
    gen = _runtime(model, directory)
    val_percent = val_percent or gen.card.training_data.get("val_percent", 10)
    conditions = list(gen.conditions)
    real, labels = validation_faces(data_dir, gen.image_size, val_percent, limit=n, labels=conditions)
    shared = None
    if features is None or (conditions and recogniser is None):  # one load of dmtl_celeba serves both
        import facezoo
        shared = facezoo.load(DEFAULT_TRUNK, backend="keras", fold_batchnorm=False)
    features = features or TrunkFeatures(shared)
    rng = np.random.default_rng(seed)
    count = (len(real) + 1) // 2
    condition = None
    if conditions:  # the generated set follows the validation faces' condition distribution
        a, _b = split_halves(len(real), seed)
        condition = np.stack([labels[c][a] for c in conditions], axis=1)
    generated = gen.generate(gen.noise(count, rng), condition)
    report = {"model": gen.card.name, "task": "generation", "data": {"data_dir": os.path.abspath(data_dir),
                                                                    "split": "val", "val_percent": val_percent},
              "n_images": int(len(real)), "seed": seed,
              "summary": fd_facezoo(generated, real, features, seed=seed)}
    if conditions:
        recogniser = recogniser or AttributeRecogniser(shared)
        rates = attribute_hit_rates(gen, conditions, recogniser, n=hit_rate_n, seed=seed,
                                    priors=gen.priors, real_images=real, real_labels=labels)
        report["attributes"] = rates
        report["attribute_model"] = recogniser.name
        for attr, entry in rates.items():
            if isinstance(entry, dict):
                report["summary"][f"{attr}_hit_rate_on"] = entry["hit_rate_on"]
                report["summary"][f"{attr}_hit_rate"] = entry["hit_rate"]
    if out:
        _write(report, out)
        from facezoo.models.gan.samples import save_image_grid
        save_image_grid(generated[:64].astype(np.float32) / 127.5 - 1.0, os.path.join(out, "samples.png"), 8)
    return report


def evaluate_upscaler(model, data_dir: str, *, out: str | None = None, n: int | None = None,
                      val_percent: int | None = None, directory: str | None = None, batch_size: int = 64) -> dict:
    """PSNR / SSIM of a shipped super-resolution model against bicubic on CelebA validation faces."""
    sr = _runtime(model, directory)
    val_percent = val_percent or sr.card.training_data.get("val_percent", 10)
    hr_size = sr.card.architecture.get("hr_size", sr.scale * sr.card.input_size[0])
    real, _ = validation_faces(data_dir, hr_size, val_percent, limit=n)
    summary = super_resolution_scores(sr.upscale_batch, real, sr.scale, batch_size)
    report = {"model": sr.card.name, "task": "super_resolution", "scale": sr.scale, "hr_size": int(hr_size),
              "data": {"data_dir": os.path.abspath(data_dir), "split": "val", "val_percent": val_percent},
              "n_images": int(len(real)), "summary": summary}
    if out:
        _write(report, out)
        from facezoo.models.gan.samples import save_image_grid
        shown = real[:8]
        lr = degrade_downscale(shown, sr.scale)
        rows = np.concatenate([bicubic_upscale(lr, sr.scale), sr.upscale_batch(lr), shown])
        save_image_grid(rows.astype(np.float32) / 127.5 - 1.0, os.path.join(out, "samples.png"), len(shown))
    return report


def _runtime(model, directory):
    if isinstance(model, str):
        from facezoo.zoo import load
        return load(model, directory=directory)
    return model


def _write(report, out):
    os.makedirs(out, exist_ok=True)
    from facezoo.files import atomic_write
    atomic_write(os.path.join(out, "metrics.json"), json.dumps(report, indent=1) + "\n")


def format_table(report: dict) -> str:
    """A plain-text summary of ``evaluate_generator`` / ``evaluate_upscaler``."""
    s = report["summary"]
    lines = [f"{report['model']} ({report['task']}) on {report['n_images']} CelebA validation faces", ""]
    if report["task"] == "generation":
        lines.append(f"{'FD-facezoo (generated vs real)':34s} {s['fd_facezoo']:10.3f}   n={s['n_generated']}")
        lines.append(f"{'FD-facezoo floor (real vs real)':34s} {s['fd_real_floor']:10.3f}   n={s['n_floor']}")
        lines.append(f"features: {s['feature_extractor']} ({s['feature_dim']}-d); not comparable with Inception FID")
        for attr, e in report.get("attributes", {}).items():
            if isinstance(e, dict):
                recall = f", real faces {e['real_recall']:.1%}" if "real_recall" in e else ""
                lines.append(f"{attr:20s} recognised when on {e['hit_rate_on']:.1%}, absent when off "
                             f"{e['hit_rate_off']:.1%} (n={e['n']}{recall})")
    else:
        lines.append(f"{'':10s} {'PSNR dB':>8s} {'SSIM':>7s}")
        lines.append(f"{'model':10s} {s['psnr']:8.2f} {s['ssim']:7.4f}")
        lines.append(f"{'bicubic':10s} {s['bicubic_psnr']:8.2f} {s['bicubic_ssim']:7.4f}")
        lines.append(f"{'gain':10s} {s['psnr_gain_db']:+8.2f} {s['ssim_gain']:+7.4f}   (x{report['scale']}, RGB)")
    return "\n".join(lines)
