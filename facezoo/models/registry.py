"""Backbone builders by name, so configs can say ``backbone: resnet18``."""
from __future__ import annotations

from facezoo.models.alexnet import alexnet
from facezoo.models.inception import inception
from facezoo.models.resnet import resnet18, resnet34, resnet50
from facezoo.models.vgg import vgg16

BACKBONES = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "alexnet": alexnet,
    "inception": inception,
    "vgg16": vgg16,
}


def register_backbone(name, builder):
    """Adds a backbone builder (a ``keras.applications``-style function) under ``name``."""
    if name in BACKBONES and BACKBONES[name] is not builder:
        raise ValueError(f"backbone {name!r} is already registered")
    BACKBONES[name] = builder
