"""benchmarks/vs_deepface.py: deepface's analyze networks as rebuilt there, and its per-face preprocessing."""
import numpy as np
import pytest

import benchmarks.vs_deepface as vs
from facezoo.models.flops import count_macs

# The Keras port of VGG-Face that deepface loads (2,622 identities) has 145,002,878 parameters.
VGG_FACE_PARAMS = 145_002_878
VGG_FACE_CLASSES = 2622


@pytest.mark.slow  # 134 M parameters to initialise (~3 s)
def test_vgg_face_heads_have_vgg_faces_trunk_and_cost():
    model = vs.vgg_face_model(2, "gender")
    assert model.input_shape == (None, 224, 224, 3) and model.output_shape == (None, 2)
    head = lambda classes: 4096 * classes + classes  # noqa: E731  a 1x1 convolution from 4096 channels
    assert model.count_params() == VGG_FACE_PARAMS - head(VGG_FACE_CLASSES) + head(2)
    # VGG-16's multiply-accumulates at 224x224: 3x3 'same' convolutions per block, halving the side after each.
    macs, side, cin = 0, 224, 3
    for filters, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(convs):
            macs += side * side * filters * 9 * cin
            cin = filters
        side //= 2
    macs += 7 * 7 * 512 * 4096 + 4096 * 4096 + 4096 * 2  # fc6 (7x7 on the 7x7 map), fc7, head
    assert count_macs(model) == macs


def test_emotion_model_layout():
    model = vs.emotion_model()
    assert model.input_shape == (None, 48, 48, 1) and model.output_shape == (None, 7)
    conv = lambda k, cin, cout: k * k * cin * cout + cout  # noqa: E731
    dense = lambda n_in, n_out: n_in * n_out + n_out  # noqa: E731
    # 48 -> conv5 44 -> maxpool5/2 20 -> 18 -> 16 -> avgpool3/2 7 -> 5 -> 3 -> avgpool3/2 1: 128 features.
    expected = (conv(5, 1, 64) + conv(3, 64, 64) * 2 + conv(3, 64, 128) + conv(3, 128, 128)
                + dense(128, 1024) + dense(1024, 1024) + dense(1024, 7))
    assert model.count_params() == expected
    x = np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 1)).astype("float32")
    p = model(x, training=False).numpy()
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)


def test_letterbox_keeps_the_aspect_pads_black_and_swaps_to_bgr():
    face = np.zeros((100, 50, 3), np.uint8)
    face[..., 0] = 200  # red
    out = vs.letterbox(face)
    assert out.shape == (1, 224, 224, 3) and out.dtype == np.float32
    cols = np.nonzero(out[0, 112, :, 2])[0]  # red lands in the last (BGR) channel
    assert cols.min() == 56 and cols.max() == 56 + 112 - 1  # 50 wide -> 112 wide, centred
    assert out[0, :, :56].max() == 0 and out[0, ..., 0].max() == 0
    with pytest.raises(ValueError, match="empty face"):
        vs.letterbox(np.zeros((0, 5, 3), np.uint8))


def test_grey48_is_the_601_luma_at_48x48():
    bgr = np.empty((1, 224, 224, 3), np.float32)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 10, 100, 200  # B, G, R
    grey = vs.grey48(bgr)
    assert grey.shape == (1, 48, 48, 1)
    assert np.all(np.abs(grey - (0.114 * 10 + 0.587 * 100 + 0.299 * 200)) <= 1)


def test_deepface_answers():
    age = np.zeros(101)
    age[[30, 40]] = 0.5
    out = vs.deepface_answers({"age": age, "gender": np.array([0.2, 0.6]), "race": np.eye(6)[3],
                               "emotion": np.array([1, 1, 2, 0, 0, 0, 0], float)})
    assert out["age"] == pytest.approx(35)
    assert out["gender"] == pytest.approx([25, 75]) and out["dominant_gender"] == 1
    assert out["dominant_race"] == 3 and out["emotion"][2] == pytest.approx(50)


def test_help_and_bad_flags(capsys):
    with pytest.raises(SystemExit) as e:
        vs.main(["--help"])
    assert e.value.code == 0 and "--photos" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        vs.main(["--rounds", "0"])
    assert e.value.code == 2 and "--rounds must be >= 1" in capsys.readouterr().err
