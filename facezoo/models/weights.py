"""Weights: loading ``.keras`` files safely, backbone weights by path or pretrained name, warm starts.

Nothing here knows about shipped models (``facezoo.zoo``): pretrained backbone weights are resolved
through ``PRETRAINED``, a table of name -> resolver that builders' modules fill in.
"""
from __future__ import annotations

import os
from typing import Callable

import keras

# Pretrained weight name (e.g. "imagenet") -> f(model_name) -> path of a weights file.
PRETRAINED: dict[str, Callable[[str], str]] = {}


def register_pretrained(name: str, resolver: Callable[[str], str]):
    """Registers ``resolver(model_name) -> path`` for ``weights=name`` in the backbone builders."""
    PRETRAINED[name] = resolver


def pretrained_path(name: str, model_name: str) -> str:
    """Path of pretrained weights ``name`` for ``model_name``; a clear error when none is registered."""
    if name not in PRETRAINED:
        known = ", ".join(sorted(PRETRAINED)) or "none yet"
        raise ValueError(f"{model_name}: weights={name!r} is neither an existing file nor a registered "
                         f"pretrained name (registered: {known}); use weights=None or a file path")
    return PRETRAINED[name](model_name)


def load_keras(path):
    """Loads a facezoo ``.keras`` file with ``safe_mode=True`` (registers facezoo's layers first)."""
    import facezoo.models  # noqa: F401  (registers Dmtl, OrdinalLogits, StopGradient)
    return keras.saving.load_model(os.fspath(path), safe_mode=True, compile=False)


def load_model_file(path, name: str):
    """``load_keras`` of a shipped model's (already checksum-verified) file; failures name the file.

    Raises:
        ModelFileError: the file cannot be read as a Keras model (e.g. it passed its checksum, so the card
            and file were replaced together, or come from another facezoo version).
    """
    import zipfile

    from facezoo.errors import ModelFileError
    try:
        return load_keras(path)
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, TypeError) as e:
        raise ModelFileError(f"{name}: {path} matches its checksum but cannot be loaded as a Keras model "
                             f"({type(e).__name__}: {e}); the card and file come from another facezoo version "
                             "or were both replaced") from None


def load_weights(model, weights):
    """Loads ``weights`` into a built backbone: a ``.weights.h5``/``.keras`` path, or a name in ``PRETRAINED``."""
    path = os.fspath(weights)
    if not os.path.exists(path):
        path = pretrained_path(path, model.name)
    if path.endswith(".keras"):
        model.set_weights(load_keras(path).get_weights())
    else:
        model.load_weights(path)


def transfer_weights(source, target, *, require_all: bool = False, datasets: dict | None = None) -> dict:
    """Copies every weight of ``source`` into the ``target`` weight with the same path and shape.

    Warm-starts a model from another one that shares part of its layers (a joint DMTL model from a
    one-data-set model, one data set's branch out of a joint model). Paths are Keras 3 variable
    paths (``layer/variable``), so both models must name their layers alike, as builders here do.

    One shape difference is bridged: a convolution kernel reading 3 input channels copied into one reading 1
    (an RGB model's stem into a grey model's) gets the sum over the colour axis, so a grey image gives the
    same response as the RGB model gives that image with its three channels equal (listed under ``adapted``).

    Args:
        source: a model, or a ``.keras`` path (loaded with ``safe_mode=True``).
        target: the model to fill (built).
        require_all: raise unless every weight of ``target`` was copied.
        datasets: DMTL data-set renames, source name -> target name: the branches and heads of data set
            ``name`` in ``source`` (layers named ``{name}_...``) fill those of the target's data set (e.g.
            ``{"face": "fer2013_face"}`` starts an expression model from ``dmtl_face``'s expression head).

    Returns:
        ``{"copied": [...], "missing": [...], "mismatched": [...], "adapted": [...]}``: target paths copied,
        target paths absent from the source, paths present in both with different shapes (left untouched), and
        the grey stems filled from RGB ones (also in ``copied``).

    Raises:
        ValueError: nothing matched, or (with ``require_all``) some target weight was not copied.
    """
    import numpy as np

    if not isinstance(source, keras.Model):
        source = load_keras(source)
    src = {w.path: w for w in source.weights}
    renames = [(f"{dst}_", f"{name}_") for name, dst in (datasets or {}).items()]

    def source_path(path):
        for dst_prefix, src_prefix in renames:
            if path.startswith(dst_prefix):
                return src_prefix + path[len(dst_prefix):]
        return path

    copied, missing, mismatched, adapted = [], [], [], []
    for w in target.weights:
        s = src.get(source_path(w.path))
        if s is None:
            missing.append(w.path)
        elif tuple(s.shape) == tuple(w.shape):
            w.assign(s.value)
            copied.append(w.path)
        elif (len(w.shape) == 4 and len(s.shape) == 4 and s.shape[2] == 3 and w.shape[2] == 1
              and tuple(s.shape[:2]) == tuple(w.shape[:2]) and s.shape[3] == w.shape[3]):
            w.assign(np.sum(keras.ops.convert_to_numpy(s.value), axis=2, keepdims=True))
            copied.append(w.path)
            adapted.append(w.path)
        else:
            mismatched.append(f"{w.path}: source {tuple(s.shape)} vs target {tuple(w.shape)}")
    if not copied:
        raise ValueError(f"transfer_weights: no weight of {source.name!r} matches {target.name!r} by path and "
                         f"shape (first target paths: {[w.path for w in target.weights[:3]]})")
    if require_all and (missing or mismatched):
        raise ValueError(f"transfer_weights: {len(missing)} target weights missing from the source "
                         f"(e.g. {missing[:3]}) and {len(mismatched)} of another shape (e.g. {mismatched[:3]})")
    return {"copied": copied, "missing": missing, "mismatched": mismatched, "adapted": adapted}
