"""Backbone builders by name, so configs can say ``backbone: resnet18``."""
from __future__ import annotations

from facezoo.models import alexnet, inception, resnet, vgg

BACKBONES = {
    "resnet18": resnet.resnet18,
    "resnet34": resnet.resnet34,
    "resnet50": resnet.resnet50,
    "alexnet": alexnet.alexnet,
    "inception": inception.inception,
    "vgg16": vgg.vgg16,
}


def register_backbone(name, builder):
    """Adds a backbone builder (a ``keras.applications``-style function) under ``name``."""
    if name in BACKBONES and BACKBONES[name] is not builder:
        raise ValueError(f"backbone {name!r} is already registered")
    BACKBONES[name] = builder
