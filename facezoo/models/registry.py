"""Backbone builders by name, so configs can say ``backbone: resnet18``."""
from __future__ import annotations

from facezoo.models.alexnet import alexnet
from facezoo.models.efficientnet_lite import efficientnet_lite0, efficientnet_lite1, efficientnet_lite2
from facezoo.models.inception import inception
from facezoo.models.mobilenet_v2 import mobilenet_v2
from facezoo.models.resnet import resnet18, resnet34, resnet50
from facezoo.models.vgg import vgg16

BACKBONES = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "alexnet": alexnet,
    "inception": inception,
    "vgg16": vgg16,
    "efficientnet_lite0": efficientnet_lite0,
    "efficientnet_lite1": efficientnet_lite1,
    "efficientnet_lite2": efficientnet_lite2,
    "mobilenet_v2": mobilenet_v2,
}


def register_backbone(name, builder):
    """Adds a backbone builder (a ``keras.applications``-style function) under ``name``."""
    if name in BACKBONES and BACKBONES[name] is not builder:
        raise ValueError(f"backbone {name!r} is already registered")
    BACKBONES[name] = builder
