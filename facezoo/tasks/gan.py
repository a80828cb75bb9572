"""GAN tasks for facezoo's loop (``facezoo.train.loop.Trainer``): DCGAN and SRGAN under any strategy.

Both read the batches of ``facezoo.data.pipeline`` — ``(images, labels, masks)`` with images in
[-1, 1] — or bare image batches. The model's own step functions do the work
(``DCGAN.adversarial_step``, ``SRGAN.pretrain_step`` / ``adversarial_step``), so ``fit`` on one
device and the loop under ``tf.distribute`` train the same way; here each per-replica sum is
divided by the global batch, as the loop requires.

Validation (eager, once per epoch) reports a few numbers on the validation images and, with
``samples_dir``, writes a sample-grid PNG from fixed inputs, named by epoch when the task knows
``steps_per_epoch`` (else by step). The loop calls ``validate`` only when it has validation data, so
recipes always pass some.
"""
from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from facezoo.data.pipeline import pipeline
from facezoo.data.tfrecord import read_manifest
from facezoo.models.gan.dcgan import DCGAN
from facezoo.models.gan.samples import fixed_noise, grid_conditions, save_image_grid
from facezoo.models.gan.srgan import SRGAN, downscale, psnr
from facezoo.tasks.base import Task
from facezoo.train.strategy import is_chief


def batch_images(batch):
    """The images of a pipeline batch ``(images, labels, masks)`` or of a bare image batch."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def batch_condition(batch, conditions):
    """``(B, len(conditions))`` float32 0/1 condition vectors from a pipeline batch's labels.

    Unknown labels (mask 0) read as 0, the pipeline's fill value; CelebA labels every attribute.
    """
    if not isinstance(batch, (tuple, list)) or len(batch) < 2 or not isinstance(batch[1], dict):
        raise ValueError(f"a model conditioned on {list(conditions)} trains on (images, labels, masks) "
                         f"batches of facezoo.data.pipeline")
    labels = batch[1]
    missing = [c for c in conditions if c not in labels]
    if missing:
        raise ValueError(f"the batches have no labels {missing}; they have {sorted(labels)}")
    return tf.stack([tf.cast(labels[c], tf.float32) for c in conditions], axis=-1)


# GANs learn the distribution of the training faces: mirror images belong to it, rotations and colour shifts
# would teach the generator to make them.
FLIP_ONLY = {"flip": {"probability": 0.5, "label_pairs": {}}}


def face_batches(manifest_dir, image_size: int, batch_size: int, *, val_batch: int = 64, seed: int = 0):
    """The square face batches the GAN recipes train on, from TFRecords of ``image_size``² faces.

    ``manifest_dir`` is what ``facezoo.train.runner.prepare`` converted (identity split, centre crop).
    Training batches are shuffled, horizontally flipped (``FLIP_ONLY``) and repeat; validation batches
    come in record order.

    Returns:
        ``(train, val, train_count)``: ``(images, labels, masks)`` datasets and the training images' count.
    """
    size = (int(image_size), int(image_size))
    manifest = read_manifest(manifest_dir)
    train = pipeline(manifest, "train", image_size=size, batch_size=batch_size, training=True, augment=FLIP_ONLY,
                     seed=seed).repeat()
    val = pipeline(manifest, "val", image_size=size, batch_size=val_batch, training=False)
    return train, val, manifest["splits"]["train"]["count"]


def _adam(learning_rate, weight_decay, beta_1):
    if weight_decay:
        return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay, beta_1=beta_1)
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1)


def _grid_path(samples_dir, optimizer, steps_per_epoch):
    step = int(optimizer.iterations.numpy())
    name = f"epoch-{step // steps_per_epoch:03d}.png" if steps_per_epoch else f"step-{step:07d}.png"
    return os.path.join(samples_dir, name)


class GanTask(Task):
    """Trains a ``DCGAN``: per step one discriminator update, then one generator update.

    Args:
        model_config: keyword arguments of ``DCGAN`` (``latent_dim``, ``image_size``, ``conditions``...).
        beta_1: Adam's first-moment decay for both networks (0.5, the DCGAN paper's).
        samples_dir: where ``validate`` writes the sample grid (None: no grids).
        sample_columns: noise vectors per grid row; an unconditional grid is square, a conditional one
            has a row per condition of ``grid_conditions`` (none, each attribute alone, all).
        steps_per_epoch: names grids ``epoch-NNN.png`` (else ``step-NNNNNNN.png``).
        sample_seed: seed of the grid's fixed noise.
        val_batches: validation batches scored per epoch.
    """

    def __init__(self, model_config: dict | None = None, *, beta_1: float = 0.5, samples_dir=None,
                 sample_columns: int = 8, steps_per_epoch: int | None = None, sample_seed: int = 0,
                 val_batches: int = 4):
        self.model_config = dict(model_config or {})
        self.beta_1 = beta_1
        self.samples_dir = samples_dir
        self.sample_columns = sample_columns
        self.steps_per_epoch = steps_per_epoch
        self.sample_seed = sample_seed
        self.val_batches = val_batches

    def build_model(self) -> DCGAN:
        return DCGAN(**self.model_config)

    def build_optimizers(self, model, learning_rate: float, weight_decay: float) -> dict:
        """Adam (AdamW when ``weight_decay``) for each network, named ``discriminator`` and ``generator``."""
        optimizers = {"discriminator": _adam(learning_rate, weight_decay, self.beta_1),
                      "generator": _adam(learning_rate, weight_decay, self.beta_1)}
        optimizers["discriminator"].build(model.discriminator.trainable_variables)
        optimizers["generator"].build(model.generator.trainable_variables)
        self._generator_optimizer = optimizers["generator"]  # its step count names the sample grids
        return optimizers

    def _condition(self, batch, model):
        return batch_condition(batch, model.conditions) if model.conditional else None

    def train_step(self, batch, model, optimizers: dict, global_batch: int) -> dict:
        """``DCGAN.adversarial_step`` over the global batch; ``loss`` is ``d_loss + g_loss``."""
        images = tf.cast(batch_images(batch), tf.float32)
        values = model.adversarial_step(images, self._condition(batch, model), optimizers["discriminator"],
                                        optimizers["generator"], 1.0 / global_batch)
        values["loss"] = values["d_loss"] + values["g_loss"]
        return values

    def sample_inputs(self, model):
        """The grid's fixed ``(noise, condition or None)``."""
        columns = self.sample_columns
        if not model.conditional:
            return fixed_noise(columns * columns, model.latent_dim, self.sample_seed), None
        condition = grid_conditions(model.conditions, columns)
        noise = np.tile(fixed_noise(columns, model.latent_dim, self.sample_seed), (len(condition) // columns, 1))
        return noise, condition

    def validate(self, model, val_data: dict) -> dict:
        """``val_d_x`` / ``val_d_g_z``: mean D(x) on validation images and D(G(z)) on as many fakes."""
        real, fake, n = 0.0, 0.0, 0
        for dataset in val_data.values():
            for batch in dataset.take(self.val_batches):
                images = tf.cast(batch_images(batch), tf.float32)
                condition = self._condition(batch, model)
                noise = tf.random.normal([tf.shape(images)[0], model.latent_dim])
                with_c = (lambda x: [x, condition]) if condition is not None else (lambda x: x)
                real += float(tf.reduce_sum(tf.sigmoid(model.discriminator(with_c(images), training=False))))
                fakes = model.generator(with_c(noise), training=False)
                fake += float(tf.reduce_sum(tf.sigmoid(model.discriminator(with_c(fakes), training=False))))
                n += int(images.shape[0])
        if self.samples_dir and is_chief():
            noise, condition = self.sample_inputs(model)
            images = model.generate(noise, condition)
            save_image_grid(images, _grid_path(self.samples_dir, self._generator_optimizer, self.steps_per_epoch),
                            self.sample_columns)
        return {"val_d_x": real / n, "val_d_g_z": fake / n} if n else {}


class SrganTask(Task):
    """Trains an ``SRGAN`` in one phase: ``pretrain`` (pixel loss) or ``adversarial``.

    The paper's schedule is two runs: pre-train, then start the adversarial run from the pre-trained
    generator (``init``). Each run checkpoints and resumes on its own.

    Args:
        model_config: keyword arguments of ``SRGAN`` except ``phase`` and ``feature_extractor``.
        phase: ``pretrain`` or ``adversarial``.
        init: a ``.keras`` SRGAN (e.g. the pre-training run's ``best.keras``) or a generator network
            alone (a shipped ``srgan_face_x4/model.keras``) whose weights start this run (a resumed run
            restores its checkpoint over them).
        feature_extractor: None (pixel content loss), a ``.keras`` path or a zero-argument callable
            returning a Keras model (images in [-1, 1] -> features) for the perceptual content loss.
        beta_1: Adam's first-moment decay (0.9, the paper's).
        samples_dir: where ``validate`` writes grids: per validation image a column of bicubic
            upsampling, super-resolution and the original.
        sample_count: validation images in the grid.
        steps_per_epoch: names grids ``epoch-NNN.png`` (else ``step-NNNNNNN.png``).
        val_batches: validation batches scored per epoch.
    """

    def __init__(self, model_config: dict | None = None, *, phase: str = "pretrain", init=None,
                 feature_extractor=None, beta_1: float = 0.9, samples_dir=None, sample_count: int = 8,
                 steps_per_epoch: int | None = None, val_batches: int = 4):
        self.model_config = dict(model_config or {})
        self.phase = phase
        self.init = init
        self.feature_extractor = feature_extractor
        self.beta_1 = beta_1
        self.samples_dir = samples_dir
        self.sample_count = sample_count
        self.steps_per_epoch = steps_per_epoch
        self.val_batches = val_batches

    def build_model(self) -> SRGAN:
        extractor = self.feature_extractor
        if isinstance(extractor, (str, os.PathLike)):
            extractor = keras.saving.load_model(extractor, safe_mode=True)
        elif callable(extractor):
            extractor = extractor()
        model = SRGAN(**self.model_config, phase=self.phase, feature_extractor=extractor)
        if self.init:
            source = keras.saving.load_model(self.init, safe_mode=True)
            generator = source.generator if isinstance(source, SRGAN) else source
            try:
                model.generator.set_weights(generator.get_weights())
            except ValueError as e:
                raise ValueError(f"init {self.init}: its generator does not match this SRGAN's "
                                 f"configuration ({e})") from None
        return model

    def build_optimizers(self, model, learning_rate: float, weight_decay: float) -> dict:
        """Adam (AdamW when ``weight_decay``): ``generator``, and ``discriminator`` in the adversarial phase."""
        optimizers = {"generator": _adam(learning_rate, weight_decay, self.beta_1)}
        optimizers["generator"].build(model.generator.trainable_variables)
        if self.phase == "adversarial":
            optimizers["discriminator"] = _adam(learning_rate, weight_decay, self.beta_1)
            optimizers["discriminator"].build(model.discriminator.trainable_variables)
        self._generator_optimizer = optimizers["generator"]
        return optimizers

    def train_step(self, batch, model, optimizers: dict, global_batch: int) -> dict:
        """One step of the model's phase; ``loss`` is the pixel loss (pretrain) or ``g_loss`` (adversarial)."""
        hr = tf.cast(batch_images(batch), tf.float32)
        scale = 1.0 / global_batch
        if model.phase == "pretrain":
            values = model.pretrain_step(hr, optimizers["generator"], scale)
            values["loss"] = values["pixel_loss"]
        else:
            values = model.adversarial_step(hr, optimizers["discriminator"], optimizers["generator"], scale)
            values["loss"] = values["g_loss"]
        return values

    def validate(self, model, val_data: dict) -> dict:
        """``val_psnr`` of the super-resolved validation images and ``val_bicubic_psnr`` of bicubic upsampling."""
        sr_sum, bicubic_sum, n = 0.0, 0.0, 0
        shown = []
        for dataset in val_data.values():
            for batch in dataset.take(self.val_batches):
                hr = tf.cast(batch_images(batch), tf.float32)
                lr = downscale(hr, model.scale)
                sr = model.generator(lr, training=False)
                bicubic = tf.clip_by_value(tf.image.resize(lr, hr.shape[1:3], method="bicubic"), -1.0, 1.0)
                sr_sum += float(tf.reduce_sum(psnr(sr, hr)))
                bicubic_sum += float(tf.reduce_sum(psnr(bicubic, hr)))
                n += int(hr.shape[0])
                if sum(len(s[0]) for s in shown) < self.sample_count:
                    shown.append((bicubic.numpy(), sr.numpy(), hr.numpy()))
        if self.samples_dir and is_chief() and shown:
            rows = [np.concatenate([s[i] for s in shown])[: self.sample_count] for i in range(3)]
            save_image_grid(np.concatenate(rows), _grid_path(self.samples_dir, self._generator_optimizer,
                                                             self.steps_per_epoch), len(rows[0]))
        return {"val_psnr": sr_sum / n, "val_bicubic_psnr": bicubic_sum / n} if n else {}

    def score(self, metrics: dict):
        """``val_psnr`` while pre-training (best.keras is the best SRResNet); None in the adversarial
        phase, where a lower PSNR is expected and the last model is kept."""
        return metrics.get("val_psnr") if self.phase == "pretrain" else None
