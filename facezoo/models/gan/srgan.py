"""SRGAN (Ledig et al. 2017): ×4 face super-resolution with an SRResNet generator.

Generator (SRResNet): 9×9 convolution and PReLU, ``num_blocks`` residual blocks (3×3 conv, BN,
PReLU, 3×3 conv, BN, add), a 3×3 conv and BN added back to the first features, then per factor 2
a 3×3 convolution to 4× the channels, a sub-pixel shuffle (``DepthToSpace``, i.e.
``tf.nn.depth_to_space``) and PReLU; a 9×9 convolution with tanh gives [-1, 1]. It is fully
convolutional: any input size works. Discriminator: 3×3 convolutions with LeakyReLU 0.2, stride 2
every other one, channels doubling four times, BatchNorm after the first; global average pooling
(so it accepts any high-resolution size), a dense layer and a logit.

Training has two phases, chosen by ``SRGAN.phase``:

* ``"pretrain"``: the generator alone minimises the pixel loss (L1 or MSE) between ``G(lr)`` and
  the high-resolution image — SRResNet training, the paper's initialisation of the GAN.
* ``"adversarial"``: one discriminator update (non-saturating loss, optional one-sided label
  smoothing), then a generator update on ``content + adversarial_weight * BCE(D(G(lr)), 1)``.
  The content loss is the mean squared difference of ``feature_extractor`` features (the paper's
  perceptual "VGG loss") when one is given, else the pixel loss. ImageNet VGG weights cannot be
  downloaded here, so the default is the pixel loss; any Keras model taking images in [-1, 1]
  (e.g. a facezoo backbone trunk with ``include_top=False``) can serve as the extractor.

Low-resolution inputs are made from the high-resolution batch inside the step (``downscale``:
bicubic with antialiasing), so training data are plain image batches. The phase is a Python
setting, fixed when a step is traced: switching it (``model.phase = "adversarial"``) makes Keras
retrace ``fit``; facezoo's loop trains one phase per run (``facezoo.tasks.gan.SrganTask``).
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

from facezoo.models.gan.dcgan import LEAKY_SLOPE, discriminator_loss, generator_loss

BN_MOMENTUM = 0.9
PHASES = ("pretrain", "adversarial")
PIXEL_LOSSES = ("l1", "mse")
PRETRAIN_METRICS = ("pixel_loss", "psnr")
ADVERSARIAL_METRICS = ("d_loss", "g_loss", "content_loss", "adversarial_loss", "d_x", "d_g_z", "psnr")


@keras.saving.register_keras_serializable(package="facezoo")
class DepthToSpace(keras.layers.Layer):
    """Sub-pixel shuffle: ``(B, H, W, C * f²) -> (B, H * f, W * f, C)`` (``tf.nn.depth_to_space``).

    Args:
        factor: the upscaling factor ``f``.
    """

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        if factor < 2:
            raise ValueError(f"DepthToSpace: factor must be >= 2, got {factor}")
        self.factor = int(factor)

    def call(self, x):
        return tf.nn.depth_to_space(x, self.factor)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        f = self.factor
        return (b, None if h is None else h * f, None if w is None else w * f, c // (f * f))

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _check_scale(scale, name):
    if scale < 2 or 2 ** round(math.log2(scale)) != scale:
        raise ValueError(f"{name}: scale must be a power of two >= 2 (e.g. 4), got {scale}")


def _prelu(x, name):
    return keras.layers.PReLU(shared_axes=[1, 2], name=name)(x)


def _conv(x, filters, kernel, name, strides=1, use_bias=True):
    return keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=use_bias, name=name)(x)


def _bn(x, name):
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)(x)


def srresnet_generator(scale: int = 4, filters: int = 64, num_blocks: int = 16,
                       name: str = "srresnet_generator") -> keras.Model:
    """Builds the SRResNet generator: ``(B, h, w, 3)`` in [-1, 1] -> ``(B, h * scale, w * scale, 3)`` in [-1, 1].

    Args:
        scale: upscaling factor, a power of two (one sub-pixel stage per factor 2).
        filters: channels of the residual trunk (64 in the paper).
        num_blocks: residual blocks (16 in the paper).
        name: model name.

    Returns:
        A functional model with input ``lr_image`` (any spatial size) and output ``sr_image``.
    """
    _check_scale(scale, name)
    if filters < 1 or num_blocks < 0:
        raise ValueError(f"{name}: filters must be >= 1 and num_blocks >= 0, got {filters}, {num_blocks}")
    inputs = keras.Input((None, None, 3), name="lr_image")
    x = head = _prelu(_conv(inputs, filters, 9, "g_head_conv"), "g_head_prelu")
    for i in range(1, num_blocks + 1):
        y = _prelu(_bn(_conv(x, filters, 3, f"g_block{i}_1_conv", use_bias=False), f"g_block{i}_1_bn"),
                   f"g_block{i}_1_prelu")
        y = _bn(_conv(y, filters, 3, f"g_block{i}_2_conv", use_bias=False), f"g_block{i}_2_bn")
        x = keras.layers.Add(name=f"g_block{i}_add")([x, y])
    x = _bn(_conv(x, filters, 3, "g_trunk_conv", use_bias=False), "g_trunk_bn")
    x = keras.layers.Add(name="g_trunk_add")([head, x])
    for i in range(1, int(math.log2(scale)) + 1):
        x = _conv(x, filters * 4, 3, f"g_up{i}_conv")
        x = DepthToSpace(2, name=f"g_up{i}_shuffle")(x)
        x = _prelu(x, f"g_up{i}_prelu")
    x = _conv(x, 3, 9, "g_out_conv")
    outputs = keras.layers.Activation("tanh", name="sr_image")(x)
    return keras.Model(inputs, outputs, name=name)


def srgan_discriminator(image_size: int = 64, filters: int = 64, dense_units: int = 1024,
                        name: str = "srgan_discriminator") -> keras.Model:
    """Builds the SRGAN discriminator: a ``(image_size, image_size, 3)`` image -> one real/fake logit.

    Args:
        image_size: side of the high-resolution images.
        filters: channels of the first stage (doubled at each of the four stages; 64 in the paper).
        dense_units: width of the dense layer before the logit (1024 in the paper).
        name: model name.

    Returns:
        A functional model with input ``image`` and output ``logit`` ``(B, 1)``.
    """
    if image_size < 16 or filters < 1 or dense_units < 1:
        raise ValueError(f"{name}: image_size must be >= 16 and filters, dense_units >= 1, "
                         f"got {image_size}, {filters}, {dense_units}")
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.LeakyReLU(LEAKY_SLOPE, name="d_stem_lrelu")(_conv(inputs, filters, 3, "d_stem_conv"))
    width = filters
    for i in range(1, 5):
        for j, strides in ((1, 1), (2, 2)):
            if i == 1 and j == 1:
                continue  # the stem is stage 1's stride-1 convolution
            x = _conv(x, width, 3, f"d_stage{i}_{j}_conv", strides=strides, use_bias=False)
            x = keras.layers.LeakyReLU(LEAKY_SLOPE, name=f"d_stage{i}_{j}_lrelu")(_bn(x, f"d_stage{i}_{j}_bn"))
        width *= 2
    x = keras.layers.GlobalAveragePooling2D(name="d_pool")(x)
    x = keras.layers.LeakyReLU(LEAKY_SLOPE, name="d_fc_lrelu")(keras.layers.Dense(dense_units, name="d_fc")(x))
    logit = keras.layers.Dense(1, name="logit")(x)
    return keras.Model(inputs, logit, name=name)


def downscale(images, scale: int):
    """``(B, H, W, 3)`` in [-1, 1] -> ``(B, H / scale, W / scale, 3)``: bicubic, antialiased, clipped."""
    h, w = images.shape[1], images.shape[2]
    if h is None or w is None or h % scale or w % scale:
        raise ValueError(f"downscale: image sides {h}x{w} must be known and divisible by {scale}")
    small = tf.image.resize(images, (h // scale, w // scale), method="bicubic", antialias=True)
    return tf.clip_by_value(small, -1.0, 1.0)


def pixel_loss(sr, hr, kind: str = "l1"):
    """Per-example mean absolute (``l1``) or squared (``mse``) difference."""
    diff = sr - hr
    per_pixel = tf.abs(diff) if kind == "l1" else tf.square(diff)
    return tf.reduce_mean(per_pixel, axis=[1, 2, 3])


def psnr(sr, hr):
    """Per-example peak signal-to-noise ratio in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = tf.reduce_mean(tf.square(tf.clip_by_value(sr, -1.0, 1.0) - hr), axis=[1, 2, 3])
    return 10.0 * tf.math.log(4.0 / tf.maximum(mse, 1e-10)) / math.log(10.0)


@keras.saving.register_keras_serializable(package="facezoo")
class SRGAN(keras.Model):
    """SRGAN as one Keras model: ``generator``, ``discriminator``, an optional frozen ``feature_extractor``.

    ``model(lr_images)`` super-resolves. Train with ``compile(g_optimizer=..., d_optimizer=...)`` and
    ``fit`` on batches of high-resolution images in [-1, 1] of side ``hr_size``; ``phase`` selects
    pixel pre-training (metrics ``pixel_loss``, ``psnr``) or adversarial training (``d_loss``,
    ``g_loss``, ``content_loss``, ``adversarial_loss``, ``d_x``, ``d_g_z``, ``psnr``). Under
    ``tf.distribute`` train through ``facezoo.tasks.gan.SrganTask``. A ``.keras`` file holds the
    networks and this config, not the optimizers.

    Args:
        scale: upscaling factor (4).
        hr_size: side of the high-resolution training images (divisible by ``scale``).
        generator_filters: SRResNet trunk channels.
        num_blocks: SRResNet residual blocks.
        discriminator_filters: discriminator first-stage channels.
        discriminator_units: discriminator dense layer width.
        pixel_loss: ``l1`` or ``mse``.
        adversarial_weight: weight of the generator's adversarial term (1e-3 in the paper).
        feature_extractor: optional Keras model (images in [-1, 1] -> features) for the perceptual
            content loss; frozen and saved with the model.
        phase: ``pretrain`` or ``adversarial``.
        label_smoothing: one-sided label smoothing of the discriminator's real targets.
    """

    def __init__(self, scale: int = 4, hr_size: int = 64, generator_filters: int = 64, num_blocks: int = 16,
                 discriminator_filters: int = 64, discriminator_units: int = 1024, pixel_loss: str = "l1",
                 adversarial_weight: float = 1e-3, feature_extractor=None, phase: str = "pretrain",
                 label_smoothing: float = 0.0, **kwargs):
        _check_scale(scale, "SRGAN")
        if hr_size % scale:
            raise ValueError(f"SRGAN: hr_size {hr_size} must be divisible by scale {scale}")
        if pixel_loss not in PIXEL_LOSSES:
            raise ValueError(f"SRGAN: pixel_loss must be one of {PIXEL_LOSSES}, got {pixel_loss!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"SRGAN: label_smoothing must be in [0, 1), got {label_smoothing}")
        if adversarial_weight < 0:
            raise ValueError(f"SRGAN: adversarial_weight must be >= 0, got {adversarial_weight}")
        if isinstance(feature_extractor, dict):
            feature_extractor = keras.saving.deserialize_keras_object(feature_extractor)
        kwargs.setdefault("name", "srgan")
        super().__init__(**kwargs)
        self.scale = int(scale)
        self.hr_size = int(hr_size)
        self.generator_filters = int(generator_filters)
        self.num_blocks = int(num_blocks)
        self.discriminator_filters = int(discriminator_filters)
        self.discriminator_units = int(discriminator_units)
        self.pixel_loss = pixel_loss
        self.adversarial_weight = float(adversarial_weight)
        self.label_smoothing = float(label_smoothing)
        self.generator = srresnet_generator(self.scale, self.generator_filters, self.num_blocks)
        self.discriminator = srgan_discriminator(self.hr_size, self.discriminator_filters, self.discriminator_units)
        self.feature_extractor = feature_extractor
        if feature_extractor is not None:
            feature_extractor.trainable = False
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in dict.fromkeys(PRETRAIN_METRICS + ADVERSARIAL_METRICS)}
        self.d_optimizer = self.g_optimizer = None
        self._phase = None
        self.phase = phase
        self.built = True

    @property
    def phase(self) -> str:
        return self._phase

    @phase.setter
    def phase(self, value: str):
        if value not in PHASES:
            raise ValueError(f"SRGAN: phase must be one of {PHASES}, got {value!r}")
        if value != self._phase:
            self._phase = value
            # Keras caches the traced step; the phase is a trace-time choice.
            self.train_function = None

    @property
    def lr_size(self) -> int:
        return self.hr_size // self.scale

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """Sets and builds the optimizers (default Adam 1e-4, beta_1 0.9, the paper's).

        Args:
            g_optimizer: optimizer of the generator (both phases).
            d_optimizer: optimizer of the discriminator (adversarial phase).
            **kwargs: passed to ``keras.Model.compile``.
        """
        kwargs.pop("optimizer", None)
        super().compile(optimizer=None, **kwargs)
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(1e-4)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(1e-4)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def content_loss(self, sr, hr):
        """Per-example content loss: feature MSE with a feature extractor, else the pixel loss."""
        if self.feature_extractor is None:
            return pixel_loss(sr, hr, self.pixel_loss)
        diff = tf.square(self.feature_extractor(sr, training=False) - self.feature_extractor(hr, training=False))
        return tf.reduce_mean(tf.reshape(diff, [tf.shape(diff)[0], -1]), axis=1)

    def pretrain_step(self, hr, g_optimizer, scale) -> dict:
        """One generator update on the pixel loss; returns scaled sums of ``pixel_loss`` and ``psnr``."""
        lr = downscale(hr, self.scale)
        g_vars = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            sr = self.generator(lr, training=True)
            loss = tf.reduce_sum(pixel_loss(sr, hr, self.pixel_loss)) * scale
        g_optimizer.apply_gradients(zip(tape.gradient(loss, g_vars), g_vars))
        return {"pixel_loss": loss, "psnr": tf.reduce_sum(psnr(sr, hr)) * scale}

    def adversarial_step(self, hr, d_optimizer, g_optimizer, scale) -> dict:
        """One discriminator then one generator update; returns the scaled sums of ``ADVERSARIAL_METRICS``."""
        lr = downscale(hr, self.scale)
        d_vars = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            sr = self.generator(lr, training=True)
            real_logits = self.discriminator(hr, training=True)
            fake_logits = self.discriminator(sr, training=True)
            d_loss = tf.reduce_sum(discriminator_loss(real_logits, fake_logits, self.label_smoothing)) * scale
        d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))

        g_vars = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            sr = self.generator(lr, training=True)
            content = tf.reduce_sum(self.content_loss(sr, hr)) * scale
            adversarial = tf.reduce_sum(generator_loss(self.discriminator(sr, training=True))) * scale
            g_loss = content + self.adversarial_weight * adversarial
        g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))
        return {"d_loss": d_loss, "g_loss": g_loss, "content_loss": content, "adversarial_loss": adversarial,
                "d_x": tf.reduce_sum(tf.sigmoid(real_logits)) * scale,
                "d_g_z": tf.reduce_sum(tf.sigmoid(fake_logits)) * scale,
                "psnr": tf.reduce_sum(psnr(sr, hr)) * scale}

    def train_step(self, data):
        if self.g_optimizer is None:
            raise RuntimeError(f"{self.name}: call compile(g_optimizer=..., d_optimizer=...) before fit")
        hr, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        hr = tf.convert_to_tensor(hr, tf.float32)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        scale = 1.0 / tf.cast(tf.shape(hr)[0] * replicas, tf.float32)
        if self.phase == "pretrain":
            values = self.pretrain_step(hr, self.g_optimizer, scale)
        else:
            values = self.adversarial_step(hr, self.d_optimizer, self.g_optimizer, scale)
        for name, value in values.items():
            self.trackers[name].update_state(value * replicas)
        return {name: self.trackers[name].result() for name in values}

    def get_config(self):
        extractor = (None if self.feature_extractor is None
                     else keras.saving.serialize_keras_object(self.feature_extractor))
        return {"name": self.name, "trainable": self.trainable, "scale": self.scale, "hr_size": self.hr_size,
                "generator_filters": self.generator_filters, "num_blocks": self.num_blocks,
                "discriminator_filters": self.discriminator_filters,
                "discriminator_units": self.discriminator_units, "pixel_loss": self.pixel_loss,
                "adversarial_weight": self.adversarial_weight, "feature_extractor": extractor,
                "phase": self.phase, "label_smoothing": self.label_smoothing}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)

    def get_compile_config(self):
        # The optimizers are not part of the saved model (see the class docstring).
        return {}
