"""DCGAN (Radford et al. 2016) for 64×64 faces, optionally conditioned on binary attributes.

The generator maps a ``latent_dim`` noise vector to an image in [-1, 1] (the range of
``facezoo.preprocess.preprocess_input``): a dense projection to 4×4, then stride-2 transposed
convolutions with BatchNorm and ReLU, doubling the side and halving the channels, and a last
transposed convolution with tanh. The discriminator mirrors it: stride-2 convolutions with
LeakyReLU 0.2 (BatchNorm on all but the first), and a dense logit.

Conditional variant (``conditions=("Male", "Smiling", ...)``, CelebA attribute names): the
condition vector (0/1 per attribute, in that order) is concatenated to the noise in the
generator, and tiled over the image as extra input channels of the discriminator.

Losses are the non-saturating ones of Goodfellow et al. (2014): D minimises
``BCE(D(x), 1 - s) + BCE(D(G(z)), 0)`` with one-sided label smoothing ``s`` (Salimans et al. 2016;
real targets only), G minimises ``BCE(D(G(z)), 1)``. ``adversarial_step`` does one D update then
one G update and is shared by ``DCGAN.train_step`` (Keras ``fit``) and
``facezoo.tasks.gan.GanTask`` (facezoo's loop under any ``tf.distribute`` strategy).
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

BN_MOMENTUM = 0.9
LEAKY_SLOPE = 0.2
# DCGAN's initialisation: N(0, 0.02) for every convolution and dense kernel.
INIT_STDDEV = 0.02
METRICS = ("d_loss", "g_loss", "d_x", "d_g_z")


def _init():
    return keras.initializers.RandomNormal(stddev=INIT_STDDEV)


def _check_size(image_size, model_name):
    if image_size < 8 or 2 ** round(math.log2(image_size)) != image_size:
        raise ValueError(f"{model_name}: image_size must be a power of two >= 8 (e.g. 32, 64), got {image_size}")


def dcgan_generator(latent_dim: int = 100, image_size: int = 64, filters: int = 64, condition_dim: int = 0,
                    name: str = "dcgan_generator") -> keras.Model:
    """Builds the DCGAN generator: noise (and condition) -> ``(image_size, image_size, 3)`` in [-1, 1].

    Args:
        latent_dim: size of the noise vector.
        image_size: output side, a power of two >= 8.
        filters: channels of the last hidden stage; the 4×4 stage has ``filters * image_size / 8``.
        condition_dim: length of the condition vector (0: unconditional, one input ``noise``).
        name: model name.

    Returns:
        A functional model with inputs ``noise`` (and ``condition``) and output ``image``.
    """
    _check_size(image_size, name)
    if latent_dim < 1 or filters < 1 or condition_dim < 0:
        raise ValueError(f"{name}: latent_dim and filters must be >= 1 and condition_dim >= 0, "
                         f"got {latent_dim}, {filters}, {condition_dim}")
    stages = int(math.log2(image_size // 4))
    noise = keras.Input((latent_dim,), name="noise")
    inputs = [noise]
    x = noise
    if condition_dim:
        condition = keras.Input((condition_dim,), name="condition")
        inputs.append(condition)
        x = keras.layers.Concatenate(name="g_concat")([noise, condition])
    width = filters * 2 ** (stages - 1)
    x = keras.layers.Dense(4 * 4 * width, use_bias=False, kernel_initializer=_init(), name="g_project")(x)
    x = keras.layers.Reshape((4, 4, width), name="g_reshape")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name="g_project_bn")(x)
    x = keras.layers.ReLU(name="g_project_relu")(x)
    for i in range(1, stages):
        width //= 2
        x = keras.layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False,
                                         kernel_initializer=_init(), name=f"g_up{i}_deconv")(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"g_up{i}_bn")(x)
        x = keras.layers.ReLU(name=f"g_up{i}_relu")(x)
    x = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same", kernel_initializer=_init(),
                                     name="g_out_deconv")(x)
    image = keras.layers.Activation("tanh", name="image")(x)
    return keras.Model(inputs if condition_dim else noise, image, name=name)


def dcgan_discriminator(image_size: int = 64, filters: int = 64, condition_dim: int = 0,
                        name: str = "dcgan_discriminator") -> keras.Model:
    """Builds the DCGAN discriminator: image (and condition) -> one real/fake logit.

    Args:
        image_size: input side, a power of two >= 8.
        filters: channels of the first convolution (doubled at every stride-2 stage down to 4×4).
        condition_dim: length of the condition vector, tiled over the image as extra channels.
        name: model name.

    Returns:
        A functional model with inputs ``image`` (and ``condition``) and output ``logit`` ``(B, 1)``.
    """
    _check_size(image_size, name)
    if filters < 1 or condition_dim < 0:
        raise ValueError(f"{name}: filters must be >= 1 and condition_dim >= 0, got {filters}, {condition_dim}")
    stages = int(math.log2(image_size // 4))
    image = keras.Input((image_size, image_size, 3), name="image")
    inputs = [image]
    x = image
    if condition_dim:
        condition = keras.Input((condition_dim,), name="condition")
        inputs.append(condition)
        c = keras.layers.Reshape((1, 1, condition_dim), name="d_condition_reshape")(condition)
        c = keras.layers.UpSampling2D(image_size, name="d_condition_tile")(c)
        x = keras.layers.Concatenate(name="d_concat")([image, c])
    width = filters
    for i in range(1, stages + 1):
        x = keras.layers.Conv2D(width, 4, strides=2, padding="same", use_bias=i == 1,
                                kernel_initializer=_init(), name=f"d_down{i}_conv")(x)
        if i > 1:
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"d_down{i}_bn")(x)
        x = keras.layers.LeakyReLU(LEAKY_SLOPE, name=f"d_down{i}_lrelu")(x)
        width *= 2
    x = keras.layers.Flatten(name="d_flatten")(x)
    logit = keras.layers.Dense(1, kernel_initializer=_init(), name="logit")(x)
    return keras.Model(inputs if condition_dim else image, logit, name=name)


def discriminator_loss(real_logits, fake_logits, label_smoothing: float = 0.0):
    """Per-example D loss ``BCE(real, 1 - label_smoothing) + BCE(fake, 0)`` from logits ``(B, 1)``."""
    real = tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.fill(tf.shape(real_logits), 1.0 - label_smoothing), logits=real_logits)
    fake = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(fake_logits), logits=fake_logits)
    return tf.reshape(real + fake, [-1])


def generator_loss(fake_logits):
    """Per-example non-saturating G loss ``BCE(D(G(z)), 1) = softplus(-logit)``."""
    return tf.reshape(tf.nn.softplus(-fake_logits), [-1])


def _with_condition(x, condition):
    return x if condition is None else [x, condition]


def adversarial_step(generator, discriminator, real, condition, d_optimizer, g_optimizer, *, latent_dim: int,
                     scale, label_smoothing: float = 0.0) -> dict:
    """One discriminator update, then one generator update, on a batch of real images.

    Every quantity is a per-example sum times ``scale``: ``1 / batch`` on one device, ``1 / global
    batch`` per replica under ``tf.distribute`` (the optimizer sums gradients over replicas).

    Args:
        generator, discriminator: the two networks (with a ``condition`` input when ``condition`` is given).
        real: real images ``(B, H, W, 3)`` in [-1, 1].
        condition: ``(B, C)`` float condition vectors of the real images, or None. The fakes of
            both updates are generated for the same conditions.
        d_optimizer, g_optimizer: the two optimizers.
        latent_dim: size of the noise vector.
        scale: factor turning per-example sums into the reported means.
        label_smoothing: one-sided: real targets are ``1 - label_smoothing``.

    Returns:
        ``d_loss``, ``g_loss``, ``d_x`` (mean D(x) on the real images, a probability) and
        ``d_g_z`` (mean D(G(z)) before the generator update), each scaled.
    """
    batch = tf.shape(real)[0]
    noise = tf.random.normal([batch, latent_dim])
    with tf.GradientTape() as tape:
        fake = generator(_with_condition(noise, condition), training=True)
        real_logits = discriminator(_with_condition(real, condition), training=True)
        fake_logits = discriminator(_with_condition(fake, condition), training=True)
        d_loss = tf.reduce_sum(discriminator_loss(real_logits, fake_logits, label_smoothing)) * scale
    d_vars = discriminator.trainable_variables
    d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars))

    noise = tf.random.normal([batch, latent_dim])
    with tf.GradientTape() as tape:
        fake = generator(_with_condition(noise, condition), training=True)
        logits = discriminator(_with_condition(fake, condition), training=True)
        g_loss = tf.reduce_sum(generator_loss(logits)) * scale
    g_vars = generator.trainable_variables
    g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars))
    return {"d_loss": d_loss, "g_loss": g_loss,
            "d_x": tf.reduce_sum(tf.sigmoid(real_logits)) * scale,
            "d_g_z": tf.reduce_sum(tf.sigmoid(fake_logits)) * scale}


@keras.saving.register_keras_serializable(package="facezoo")
class DCGAN(keras.Model):
    """A DCGAN as one Keras model: ``generator`` and ``discriminator`` sub-models and its own ``train_step``.

    ``model(noise)`` (conditional: ``model([noise, condition])``) generates images. Train with
    ``compile(d_optimizer=..., g_optimizer=...)`` and ``fit`` on batches of real images in [-1, 1]
    (conditional: ``(images, condition)`` pairs); ``fit`` reports ``d_loss``, ``g_loss``, ``d_x``
    (D(x)) and ``d_g_z`` (D(G(z))). Under ``tf.distribute`` train through
    ``facezoo.tasks.gan.GanTask`` and ``facezoo.train.loop``. A ``.keras`` file holds both networks
    and this config, not the optimizers: compile again to continue training.

    Args:
        latent_dim: size of the noise vector.
        image_size: generated side, a power of two >= 8 (64 for faces).
        generator_filters: channels of the generator's last hidden stage.
        discriminator_filters: channels of the discriminator's first stage.
        conditions: names of the binary attributes the model is conditioned on (empty: unconditional).
        label_smoothing: one-sided label smoothing of the real targets (0.1 makes them 0.9).
    """

    def __init__(self, latent_dim: int = 100, image_size: int = 64, generator_filters: int = 64,
                 discriminator_filters: int = 64, conditions=(), label_smoothing: float = 0.0, **kwargs):
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"DCGAN: label_smoothing must be in [0, 1), got {label_smoothing}")
        conditions = tuple(conditions)
        if len(set(conditions)) != len(conditions):
            raise ValueError(f"DCGAN: conditions must be distinct, got {list(conditions)}")
        kwargs.setdefault("name", "cdcgan" if conditions else "dcgan")
        super().__init__(**kwargs)
        self.latent_dim = int(latent_dim)
        self.image_size = int(image_size)
        self.generator_filters = int(generator_filters)
        self.discriminator_filters = int(discriminator_filters)
        self.conditions = conditions
        self.label_smoothing = float(label_smoothing)
        self.generator = dcgan_generator(self.latent_dim, self.image_size, self.generator_filters, len(conditions))
        self.discriminator = dcgan_discriminator(self.image_size, self.discriminator_filters, len(conditions))
        self.trackers = {name: keras.metrics.Mean(name=name) for name in METRICS}
        self.d_optimizer = self.g_optimizer = None
        self.built = True

    @property
    def conditional(self) -> bool:
        return bool(self.conditions)

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def generate(self, noise, condition=None):
        """Images for ``noise`` ``(B, latent_dim)`` (and ``condition`` ``(B, C)``) in inference mode."""
        if self.conditional and condition is None:
            raise ValueError(f"{self.name} is conditioned on {list(self.conditions)}: give a condition")
        noise = tf.convert_to_tensor(noise, tf.float32)
        condition = tf.convert_to_tensor(condition, tf.float32) if self.conditional else None
        return self.generator(_with_condition(noise, condition), training=False)

    def compile(self, d_optimizer=None, g_optimizer=None, label_smoothing: float | None = None, **kwargs):
        """Sets the two optimizers (default: Adam 2e-4, beta_1 0.5, the DCGAN paper's) and builds them.

        Args:
            d_optimizer: optimizer of the discriminator.
            g_optimizer: optimizer of the generator.
            label_smoothing: overrides the model's one-sided label smoothing.
            **kwargs: passed to ``keras.Model.compile`` (``jit_compile``, ``steps_per_execution``...).
        """
        kwargs.pop("optimizer", None)
        super().compile(optimizer=None, **kwargs)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        if label_smoothing is not None:
            if not 0.0 <= label_smoothing < 1.0:
                raise ValueError(f"DCGAN.compile: label_smoothing must be in [0, 1), got {label_smoothing}")
            self.label_smoothing = float(label_smoothing)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def split_batch(self, data):
        """``images`` or ``(images, condition)`` -> ``(images, condition or None)``."""
        images, condition, _ = keras.utils.unpack_x_y_sample_weight(data)
        if self.conditional:
            if condition is None:
                raise ValueError(f"{self.name} is conditioned on {list(self.conditions)}: "
                                 f"train on (images, condition) batches")
            condition = tf.cast(condition, tf.float32)
        else:
            condition = None
        return tf.convert_to_tensor(images, tf.float32), condition

    def adversarial_step(self, images, condition, d_optimizer, g_optimizer, scale) -> dict:
        """``adversarial_step`` with this model's networks and settings."""
        return adversarial_step(self.generator, self.discriminator, images, condition, d_optimizer, g_optimizer,
                                latent_dim=self.latent_dim, scale=scale, label_smoothing=self.label_smoothing)

    def train_step(self, data):
        if self.d_optimizer is None:
            raise RuntimeError(f"{self.name}: call compile(d_optimizer=..., g_optimizer=...) before fit")
        images, condition = self.split_batch(data)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        scale = 1.0 / tf.cast(tf.shape(images)[0] * replicas, tf.float32)
        values = self.adversarial_step(images, condition, self.d_optimizer, self.g_optimizer, scale)
        for name, value in values.items():
            self.trackers[name].update_state(value * replicas)
        return {name: t.result() for name, t in self.trackers.items()}

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "latent_dim": self.latent_dim,
                "image_size": self.image_size, "generator_filters": self.generator_filters,
                "discriminator_filters": self.discriminator_filters, "conditions": list(self.conditions),
                "label_smoothing": self.label_smoothing}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)

    def get_compile_config(self):
        # The optimizers are not part of the saved model (see the class docstring).
        return {}
