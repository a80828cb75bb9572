"""Deep multi-task learning (DMTL; thesis §3.3-3.5, Han et al. 2017).

One shared trunk (any registered backbone) feeds, per data set, up to four category branches —
holistic/local × nominal/ordinal — and each branch feeds one head per attribute. Holistic branches
read the globally pooled trunk features; local branches keep the spatial layout (1×1 reduction,
then a dense layer over every position), so a local attribute can look at its region. Data sets
with different label spaces train through the one trunk, each with its own branches (§3.4).

Every head has a self-evaluation twin (§3.5): ``<head>_conf`` is a logit for "this head's
prediction is right", computed from the branch features and the head's own (gradient-stopped)
logits, and trained on whether the prediction matched the label. Decoders turn it into a
confidence and an abstain flag.

Outputs are a dict keyed ``<dataset>__<attribute>`` (logits) and ``<dataset>__<attribute>_conf``.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import keras

from facezoo.attributes import Attribute, LabelSpace
from facezoo.models import heads as heads_lib
from facezoo.models.registry import BACKBONES

GROUPS = ("holistic_nominal", "holistic_ordinal", "local_nominal", "local_ordinal")


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """One head of a DMTL branch.

    Args:
        attribute: what the head predicts.
        weight: loss weight of this head.
        tolerance: the self-evaluation target counts a prediction as right when its class index is
            within ``tolerance`` of the label (0: exact; 5 on a 0-100 year scale: within 5 years).
    """

    attribute: Attribute
    weight: float = 1.0
    tolerance: int = 0

    def to_dict(self):
        return {"attribute": self.attribute.to_dict(), "weight": self.weight, "tolerance": self.tolerance}

    @classmethod
    def from_dict(cls, d):
        return cls(Attribute.from_dict(d["attribute"]), float(d["weight"]), int(d["tolerance"]))


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """The heads of one data set's branch. ``weight`` scales all its heads' losses."""

    name: str
    heads: tuple[HeadSpec, ...]
    weight: float = 1.0

    def to_dict(self):
        return {"name": self.name, "heads": [h.to_dict() for h in self.heads], "weight": self.weight}

    @classmethod
    def from_dict(cls, d):
        return cls(d["name"], tuple(HeadSpec.from_dict(h) for h in d["heads"]), float(d.get("weight", 1.0)))


def _as_heads(heads) -> tuple[HeadSpec, ...]:
    out = []
    for h in heads:
        if isinstance(h, HeadSpec):
            out.append(h)
        elif isinstance(h, Attribute):
            out.append(HeadSpec(h))
        elif isinstance(h, Mapping):
            out.append(HeadSpec.from_dict(h))
        else:
            raise TypeError(f"A head must be a HeadSpec, an Attribute or a dict, got {type(h).__name__}")
    return tuple(out)


def _as_dataset(name, value) -> DatasetSpec:
    if isinstance(value, DatasetSpec):
        return value
    if isinstance(value, Mapping) and "heads" in value:
        return DatasetSpec.from_dict({"name": name, **value})
    return DatasetSpec(name, _as_heads(value))


@dataclasses.dataclass(frozen=True)
class DmtlConfig:
    """Everything that defines a DMTL model; a recipe is one of these plus a schedule.

    Args:
        backbone: a name in ``facezoo.models.registry.BACKBONES`` (``resnet18``, ...).
        input_size: ``S`` or ``(H, W)``.
        heads: for a single data set: a ``LabelSpace`` or a list of ``HeadSpec``/``Attribute``.
        datasets: for several: ``{name: LabelSpace | [HeadSpec, ...] | DatasetSpec}``. Give one of the two.
        width: backbone channel multiplier.
        activation: backbone activation (``relu`` / ``leaky_relu``).
        branch_units: width of each category branch.
        local_channels: channels kept per position in local branches.
        dropout: dropout rate in the branches.
        self_evaluation: add the ``_conf`` heads.
        channels: input channels: 3 (RGB) or 1 (grey, e.g. FER-2013).
    """

    backbone: str = "resnet18"
    input_size: int | tuple[int, int] = 112
    heads: object = None
    datasets: object = None
    width: float = 1.0
    activation: str = "relu"
    branch_units: int = 256
    local_channels: int = 32
    dropout: float = 0.3
    self_evaluation: bool = True
    channels: int = 3

    def __post_init__(self):
        if (self.heads is None) == (self.datasets is None):
            raise ValueError("DmtlConfig: give exactly one of heads= (one data set) or datasets= (several)")
        if self.heads is not None:
            name = self.heads.name if isinstance(self.heads, LabelSpace) else "main"
            datasets = (DatasetSpec(name, _as_heads(self.heads)),)
        elif isinstance(self.datasets, Mapping):
            datasets = tuple(_as_dataset(k, v) for k, v in self.datasets.items())
        else:
            datasets = tuple(d if isinstance(d, DatasetSpec) else DatasetSpec.from_dict(d) for d in self.datasets)
        object.__setattr__(self, "heads", None)
        object.__setattr__(self, "datasets", datasets)
        size = self.input_size
        size = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)
        object.__setattr__(self, "input_size", size)
        if self.backbone not in BACKBONES:
            raise ValueError(f"DmtlConfig: unknown backbone {self.backbone!r}; choose one of {sorted(BACKBONES)}")
        if len(size) != 2 or min(size) < 32:
            raise ValueError(f"DmtlConfig: input_size must be S or (H, W) with sides >= 32, got {self.input_size}")
        if not datasets or any(not d.heads for d in datasets):
            raise ValueError("DmtlConfig: every data set needs at least one head")
        names = [d.name for d in datasets]
        if len(set(names)) != len(names):
            raise ValueError(f"DmtlConfig: data set names must be unique, got {names}")
        for d in datasets:
            if "__" in d.name or "/" in d.name:
                raise ValueError(f"DmtlConfig: data set name {d.name!r} may not contain '__' or '/'")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"DmtlConfig: dropout must be in [0, 1), got {self.dropout}")
        if self.channels not in (1, 3):
            raise ValueError(f"DmtlConfig: channels must be 1 (grey) or 3 (RGB), got {self.channels}")

    def head_specs(self):
        """Yields ``(dataset_spec, head_spec, output_name)`` for every head."""
        for d in self.datasets:
            for h in d.heads:
                yield d, h, output_name(d.name, h.attribute.name)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["heads"] = None
        d["datasets"] = [s.to_dict() for s in self.datasets]
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DmtlConfig":
        d = dict(d)
        d["input_size"] = tuple(d["input_size"])
        d["datasets"] = [DatasetSpec.from_dict(s) for s in d["datasets"]]
        d.pop("heads", None)
        return cls(**d)


def output_name(dataset: str, attribute: str) -> str:
    """Model output key of a head."""
    return f"{dataset}__{attribute}"


def confidence_name(head_output: str) -> str:
    """Model output key of a head's self-evaluation logit."""
    return f"{head_output}_conf"


def _dense_block(x, units, dropout, name):
    x = keras.layers.Dense(units, use_bias=False, name=f"{name}_fc")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


@keras.saving.register_keras_serializable(package="facezoo")
class Dmtl(keras.Model):
    """The DMTL network as a functional model; ``get_config`` is exactly its ``DmtlConfig``.

    Args:
        config: a ``DmtlConfig`` or its ``to_dict()``.
    """

    def __init__(self, config, **kwargs):
        cfg = config if isinstance(config, DmtlConfig) else DmtlConfig.from_dict(config)
        h, w = cfg.input_size
        inputs = keras.Input(shape=(h, w, cfg.channels), name="image")
        trunk = BACKBONES[cfg.backbone](
            include_top=False, input_tensor=inputs, input_shape=(h, w, cfg.channels), width=cfg.width,
            activation=cfg.activation)
        features = trunk.output
        pooled = keras.layers.GlobalAveragePooling2D(name="trunk_pool")(features)
        outputs = {}
        for ds in cfg.datasets:
            groups = {}
            for spec in ds.heads:
                groups.setdefault(spec.attribute.group, []).append(spec)
            for group in GROUPS:
                if group not in groups:
                    continue
                prefix = f"{ds.name}_{group}"
                if group.startswith("local"):
                    x = keras.layers.Conv2D(cfg.local_channels, 1, use_bias=False, name=f"{prefix}_reduce")(features)
                    x = keras.layers.BatchNormalization(name=f"{prefix}_reduce_bn")(x)
                    x = keras.layers.ReLU(name=f"{prefix}_reduce_relu")(x)
                    x = keras.layers.Flatten(name=f"{prefix}_flatten")(x)
                else:
                    x = pooled
                branch = _dense_block(x, cfg.branch_units, cfg.dropout, prefix)
                for spec in groups[group]:
                    out = output_name(ds.name, spec.attribute.name)
                    logits = heads_lib.head_layer(spec.attribute, out)(branch)
                    outputs[out] = logits
                    if cfg.self_evaluation:
                        seen = heads_lib.StopGradient(name=f"{out}_seen")(logits)
                        c = keras.layers.Concatenate(name=f"{out}_conf_in")([branch, seen])
                        c = keras.layers.Dense(32, activation="relu", name=f"{out}_conf_fc")(c)
                        outputs[confidence_name(out)] = keras.layers.Dense(1, name=confidence_name(out))(c)
        kwargs.setdefault("name", f"dmtl_{cfg.backbone}")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.dmtl_config = cfg

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "config": self.dmtl_config.to_dict()}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


def dmtl(config: DmtlConfig, weights=None) -> Dmtl:
    """Builds a DMTL model; ``weights`` is None, a ``.weights.h5``/``.keras`` path."""
    model = Dmtl(config)
    if weights is not None:
        from facezoo.models.weights import load_weights
        load_weights(model, weights)
    return model


def heads_of(model_or_config) -> list[tuple[str, HeadSpec, str]]:
    """``(dataset, head_spec, output_name)`` for every head of a model or config."""
    cfg = getattr(model_or_config, "dmtl_config", model_or_config)
    return [(d.name, h, o) for d, h, o in cfg.head_specs()]


def select_dataset(config: DmtlConfig, names: Sequence[str]) -> DmtlConfig:
    """The config restricted to some data sets (to export one data set's branch of a joint model)."""
    keep = [d for d in config.datasets if d.name in names]
    missing = set(names) - {d.name for d in keep}
    if missing:
        raise ValueError(f"select_dataset: {sorted(missing)} not in {[d.name for d in config.datasets]}")
    return dataclasses.replace(config, datasets=keep)


def any_size_trunk(model: Dmtl) -> keras.Model:
    """A copy of a DMTL model's trunk (its backbone, no heads) rebuilt for inputs of any size ``(None, None, C)``.

    Every trunk weight is transferred (an error names any that does not fit); the copy takes the model's own
    input scaling (for the shipped attribute models: RGB in [-1, 1]).
    """
    from facezoo.models.registry import BACKBONES
    from facezoo.models.weights import transfer_weights
    cfg = model.dmtl_config
    trunk = BACKBONES[cfg.backbone](include_top=False, weights=None, input_shape=(None, None, cfg.channels),
                                    width=cfg.width, activation=cfg.activation)
    transfer_weights(model, trunk, require_all=True)
    return trunk
