"""DCGAN and SRGAN: shapes, ranges, names, training with ``fit``, label smoothing, conditioning, saving.

Every model is tiny (4-8-channel networks, 16 px) so the whole file runs in seconds.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf

from facezoo.models.gan import (DCGAN, SRGAN, DepthToSpace, dcgan_discriminator, dcgan_generator, downscale, psnr,
                                srgan_discriminator, srresnet_generator)
from facezoo.models.gan.dcgan import METRICS, discriminator_loss, generator_loss
from facezoo.models.gan.samples import fixed_noise, grid_conditions, image_grid, save_image_grid
from tests.models.helpers import layer_names, predict

TINY = {"latent_dim": 8, "image_size": 16, "generator_filters": 8, "discriminator_filters": 8}
TINY_SR = {"hr_size": 16, "generator_filters": 8, "num_blocks": 1, "discriminator_filters": 4,
           "discriminator_units": 8}


def smooth_images(n, size, seed=0):
    """Random 4×4 fields upsampled to ``size``: images a tiny network can learn to super-resolve."""
    coarse = np.random.default_rng(seed).uniform(-1, 1, (n, 4, 4, 3)).astype("float32")
    return np.clip(tf.image.resize(coarse, (size, size)).numpy(), -1, 1)


def weights_of(model):
    return [w.numpy().copy() for w in model.trainable_weights]


def moved(before, model):
    return max(float(np.abs(b - w.numpy()).max()) for b, w in zip(before, model.trainable_weights))


# ----------------------------------------------------------------------------- DCGAN networks
@pytest.mark.parametrize("size", [16, 64])
def test_generator_maps_noise_to_images_in_tanh_range(size):
    g = dcgan_generator(latent_dim=8, image_size=size, filters=4)
    out = predict(g, fixed_noise(3, 8) * 10)  # large noise saturates tanh, never exceeds it
    assert out.shape == (3, size, size, 3)
    assert out.min() >= -1.0 and out.max() <= 1.0
    names = layer_names(g)
    assert names[:2] == ["noise", "g_project"] and names[-1] == "image"
    assert len(names) == len(set(names))
    assert sum(n.endswith("_deconv") for n in names) == int(np.log2(size // 4))


def test_discriminator_gives_one_logit_per_image():
    d = dcgan_discriminator(image_size=16, filters=4)
    assert predict(d, smooth_images(5, 16)).shape == (5, 1)
    assert [n for n in layer_names(d) if n.endswith("_bn")] == ["d_down2_bn"]  # none on the first stage


@pytest.mark.parametrize("builder", [dcgan_generator, dcgan_discriminator])
def test_builders_reject_sizes_that_are_not_powers_of_two(builder):
    with pytest.raises(ValueError, match="power of two"):
        builder(image_size=48)


def test_conditional_networks_take_the_condition_as_second_input():
    model = DCGAN(**TINY, conditions=("Male", "Smiling", "Eyeglasses"))
    assert [t.name for t in model.generator.inputs] == ["noise", "condition"]
    assert model.generator.inputs[1].shape == (None, 3)
    assert [t.name for t in model.discriminator.inputs] == ["image", "condition"]
    assert model.discriminator.get_layer("d_condition_tile").output.shape == (None, 16, 16, 3)
    noise = fixed_noise(2, 8)
    off, on = np.zeros((2, 3), "float32"), np.ones((2, 3), "float32")
    images = model.generate(noise, off)
    assert images.shape == (2, 16, 16, 3)
    assert not np.allclose(images, model.generate(noise, on))  # the condition changes the image
    logits = predict(model.discriminator, [images.numpy(), off])
    assert logits.shape == (2, 1)
    with pytest.raises(ValueError, match="give a condition"):
        model.generate(noise)


# ----------------------------------------------------------------------------- DCGAN training
def test_losses_are_the_non_saturating_ones_with_one_sided_smoothing():
    real, fake = tf.constant([[2.0]]), tf.constant([[-1.0]])
    sp = lambda x: float(np.log1p(np.exp(x)))  # noqa: E731  softplus
    np.testing.assert_allclose(discriminator_loss(real, fake), [sp(-2.0) + sp(-1.0)], rtol=1e-6)
    # Real targets 0.9: BCE = 0.9 softplus(-x) + 0.1 softplus(x); fake targets stay 0.
    np.testing.assert_allclose(discriminator_loss(real, fake, 0.1), [0.9 * sp(-2) + 0.1 * sp(2) + sp(-1)], rtol=1e-6)
    np.testing.assert_allclose(generator_loss(fake), [sp(1.0)], rtol=1e-6)


def test_fit_updates_both_networks_and_reports_the_four_metrics():
    keras.utils.set_random_seed(0)
    model = DCGAN(**TINY)
    model.compile()
    g0, d0 = weights_of(model.generator), weights_of(model.discriminator)
    history = model.fit(smooth_images(16, 16), batch_size=8, epochs=1, verbose=0).history
    assert sorted(history) == sorted(METRICS)
    for name in ("d_x", "d_g_z"):
        assert 0.0 < history[name][0] < 1.0
    assert all(np.isfinite(v[0]) for v in history.values())
    assert moved(g0, model.generator) > 0 and moved(d0, model.discriminator) > 0


def test_label_smoothing_changes_only_the_discriminator_loss_of_the_same_step():
    images = tf.constant(smooth_images(8, 16))
    keras.utils.set_random_seed(0)
    model = DCGAN(**TINY)
    d_frozen, g_frozen = keras.optimizers.SGD(0.0), keras.optimizers.SGD(0.0)
    values = {}
    for smoothing in (0.0, 0.2):
        model.label_smoothing = smoothing
        tf.random.set_seed(1)  # the same noise for both
        values[smoothing] = model.adversarial_step(images, None, d_frozen, g_frozen, 1 / 8)
    # Same weights, noise and logits: the smoothed real targets add 0.2 * (softplus(x) - softplus(-x)) = 0.2 x.
    assert float(values[0.0]["d_x"]) == pytest.approx(float(values[0.2]["d_x"]))
    assert float(values[0.0]["g_loss"]) == pytest.approx(float(values[0.2]["g_loss"]))
    real_logits = model.discriminator(images, training=True)
    expected = float(values[0.0]["d_loss"]) + 0.2 * float(tf.reduce_mean(real_logits))
    assert float(values[0.2]["d_loss"]) == pytest.approx(expected, rel=1e-4)
    model.compile(label_smoothing=0.3)
    assert model.label_smoothing == 0.3
    with pytest.raises(ValueError, match="label_smoothing"):
        DCGAN(**TINY, label_smoothing=1.0)


def test_conditional_training_needs_conditions():
    model = DCGAN(**TINY, conditions=("Male", "Young"))
    model.compile()
    with pytest.raises(ValueError, match="condition"):
        model.train_step(tf.constant(smooth_images(2, 16)))


def test_fit_before_compile_says_what_to_do():
    with pytest.raises(RuntimeError, match="compile"):
        DCGAN(**TINY).train_step(tf.zeros((2, 16, 16, 3)))


def test_dcgan_round_trips_through_a_keras_file(tmp_path):
    model = DCGAN(**TINY, conditions=("Smiling",), label_smoothing=0.1)
    model.compile()
    # Training-mode passes move the BatchNorm statistics away from their initial values (eagerly, no tracing).
    model.discriminator([tf.constant(smooth_images(8, 16)), tf.ones((8, 1))], training=True)
    model.generator([tf.constant(fixed_noise(8, 8)), tf.ones((8, 1))], training=True)
    model.save(tmp_path / "cdcgan.keras")
    loaded = keras.saving.load_model(tmp_path / "cdcgan.keras", safe_mode=True)
    assert isinstance(loaded, DCGAN) and loaded.get_config() == model.get_config()
    noise, condition = fixed_noise(2, 8), np.ones((2, 1), "float32")
    np.testing.assert_array_equal(predict(loaded, [noise, condition]), predict(model, [noise, condition]))
    for a, b in zip(loaded.discriminator.weights, model.discriminator.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# ----------------------------------------------------------------------------- SRGAN
def test_depth_to_space_is_a_serialisable_sub_pixel_shuffle():
    x = np.arange(2 * 3 * 3 * 8, dtype="float32").reshape(2, 3, 3, 8)
    layer = DepthToSpace(2)
    np.testing.assert_array_equal(layer(x), tf.nn.depth_to_space(x, 2))
    assert layer.compute_output_shape((None, 3, None, 8)) == (None, 6, None, 2)
    assert DepthToSpace.from_config(layer.get_config()).factor == 2


def test_srresnet_upscales_any_size_by_four_into_tanh_range():
    g = srresnet_generator(scale=4, filters=8, num_blocks=2)
    for h, w in ((16, 16), (24, 20)):
        out = predict(g, np.random.default_rng(0).uniform(-1, 1, (1, h, w, 3)).astype("float32"))
        assert out.shape == (1, 4 * h, 4 * w, 3)
        assert out.min() >= -1 and out.max() <= 1
    names = layer_names(g)
    assert [n for n in names if n.endswith("_shuffle")] == ["g_up1_shuffle", "g_up2_shuffle"]
    assert "g_block2_add" in names and "g_trunk_add" in names and len(names) == len(set(names))


def test_srgan_discriminator_and_downscale_shapes():
    d = srgan_discriminator(image_size=32, filters=4, dense_units=8)
    assert predict(d, smooth_images(3, 32)).shape == (3, 1)
    # Four stride-2 convolutions: 32 -> 2 before pooling.
    assert d.get_layer("d_stage4_2_conv").output.shape[1:3] == (2, 2)
    lr = downscale(tf.constant(smooth_images(2, 32)), 4)
    assert lr.shape == (2, 8, 8, 3) and float(tf.reduce_max(tf.abs(lr))) <= 1.0
    with pytest.raises(ValueError, match="divisible"):
        downscale(tf.zeros((1, 30, 30, 3)), 4)
    assert float(psnr(tf.zeros((1, 4, 4, 3)), tf.fill((1, 4, 4, 3), 0.2))[0]) == pytest.approx(20.0, abs=1e-4)


def test_srgan_pixel_pretraining_lowers_the_pixel_loss_on_a_fixed_batch_then_switches_phase():
    keras.utils.set_random_seed(0)
    model = SRGAN(**TINY_SR)
    model.compile(g_optimizer=keras.optimizers.Adam(3e-3))
    d0 = weights_of(model.discriminator)
    hr = smooth_images(8, 16)
    lr = downscale(tf.constant(hr), 4)
    before = float(tf.reduce_mean(tf.abs(model(lr) - hr)))
    history = model.fit(np.tile(hr, (30, 1, 1, 1)), batch_size=8, epochs=1, shuffle=False, verbose=0).history
    assert sorted(history) == ["pixel_loss", "psnr"]  # 30 steps on the same batch
    assert float(tf.reduce_mean(tf.abs(model(lr) - hr))) < 0.8 * before
    assert moved(d0, model.discriminator) == 0.0  # pre-training leaves the discriminator alone
    # The phase is chosen when fit traces its step: switching it retraces.
    model.phase = "adversarial"
    assert "d_loss" in model.fit(hr, batch_size=8, verbose=0).history
    assert moved(d0, model.discriminator) > 0
    with pytest.raises(ValueError, match="phase"):
        model.phase = "finetune"


def test_srgan_adversarial_phase_trains_both_with_a_perceptual_loss(tmp_path):
    keras.utils.set_random_seed(0)
    extractor = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3, name="fe_conv")],
                                 name="features")
    model = SRGAN(**TINY_SR, feature_extractor=extractor, phase="adversarial", label_smoothing=0.1)
    model.compile()
    e0, d0, g0 = weights_of(extractor), weights_of(model.discriminator), weights_of(model.generator)
    assert e0 == [] and not extractor.trainable  # frozen
    history = model.fit(smooth_images(8, 16), batch_size=4, epochs=1, verbose=0).history
    assert sorted(history) == sorted(["d_loss", "g_loss", "content_loss", "adversarial_loss", "d_x", "d_g_z",
                                      "psnr"])
    assert moved(d0, model.discriminator) > 0 and moved(g0, model.generator) > 0
    # The content loss is the features' MSE, not the pixel loss.
    sr = model(downscale(tf.constant(smooth_images(2, 16)), 4))
    hr = tf.constant(smooth_images(2, 16))
    assert not np.allclose(model.content_loss(sr, hr), tf.reduce_mean(tf.abs(sr - hr), axis=[1, 2, 3]))

    model.save(tmp_path / "srgan.keras")
    loaded = keras.saving.load_model(tmp_path / "srgan.keras", safe_mode=True)
    assert isinstance(loaded, SRGAN) and loaded.phase == "adversarial"
    without_extractor = lambda m: {k: v for k, v in m.get_config().items() if k != "feature_extractor"}  # noqa: E731
    assert without_extractor(loaded) == without_extractor(model)
    assert layer_names(loaded.feature_extractor) == layer_names(extractor) and not loaded.feature_extractor.trainable
    lr = smooth_images(2, 4)
    np.testing.assert_array_equal(predict(loaded, lr), predict(model, lr))
    for a, b in zip(loaded.feature_extractor.weights, extractor.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("kwargs, match", [({"scale": 3}, "power of two"), ({"hr_size": 30}, "divisible"),
                                           ({"pixel_loss": "l2"}, "pixel_loss")])
def test_srgan_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SRGAN(**{**TINY_SR, **kwargs})


# ----------------------------------------------------------------------------- sample grids
def test_sample_grid_tiles_images_and_writes_a_png(tmp_path):
    images = np.stack([np.full((4, 4, 3), v, "float32") for v in (-1.0, 0.0, 1.0)])
    grid = image_grid(images, columns=2, pad=1)
    assert grid.shape == (1 + 2 * 5, 1 + 2 * 5, 3) and grid.dtype == np.uint8
    assert grid[1, 1, 0] == 0 and grid[1, 6, 0] == 128 and grid[6, 1, 0] == 255
    path = save_image_grid(images, tmp_path / "s" / "grid.png", columns=2)
    from PIL import Image
    assert Image.open(path).size == (14, 14)  # default padding 2
    rows = grid_conditions(("Male", "Smiling"), columns=3)
    assert rows.shape == (4 * 3, 2)
    np.testing.assert_array_equal(rows[::3], [[0, 0], [1, 0], [0, 1], [1, 1]])
    np.testing.assert_array_equal(fixed_noise(2, 3, seed=1), fixed_noise(2, 3, seed=1))


def test_count_macs_counts_transposed_convolutions():
    """Every input pixel of a k x k transposed convolution scatters k*k*cin*cout multiply-adds."""
    import keras

    from facezoo.models.flops import count_macs
    x = keras.Input((4, 4, 3))
    model = keras.Model(x, keras.layers.Conv2DTranspose(5, 4, strides=2, padding="same")(x))
    assert count_macs(model) == 4 * 4 * 3 * 4 * 4 * 5
    g = dcgan_generator(latent_dim=8, image_size=16, filters=4)  # dense 8 -> 4*4*8, deconvs 4x4x8 -> 8x8x4 -> 16x16x3
    assert count_macs(g) == 8 * 4 * 4 * 8 + 4 * 4 * 8 * 16 * 4 + 8 * 8 * 4 * 16 * 3


def test_perceptual_features_come_from_a_shipped_trunk_and_name_bad_layers():
    from facezoo.errors import UsageError
    from facezoo.models.gan.perceptual import parse_extractor, trunk_feature_extractor
    features = trunk_feature_extractor("dmtl_celeba", layer="conv3_block2_out")
    assert not features.trainable and features.trainable_weights == []
    out = features(tf.constant(smooth_images(2, 64)))
    assert out.shape[:3] == (2, 8, 8)  # stride 8 on any input size
    # The trunk's weights are the shipped model's, not a fresh initialisation.
    import facezoo
    shipped = facezoo.load("dmtl_celeba", backend="keras", fold_batchnorm=False).model
    np.testing.assert_array_equal(features.get_layer("conv1_conv").kernel.numpy(),
                                  shipped.get_layer("conv1_conv").kernel.numpy())
    with pytest.raises(UsageError, match="no layer 'nope'.*conv2_block1_out"):
        trunk_feature_extractor("dmtl_celeba", layer="nope")
    assert parse_extractor("features.keras") == "features.keras"
    assert parse_extractor("trunk:dmtl_celeba:conv2_block2_out")().output.shape[-1] == out.shape[-1] // 2
    with pytest.raises(UsageError, match="trunk:MODEL"):
        parse_extractor("trunk:")
