"""``TrainConfig``: the schedule and bookkeeping of one run of the generic training loop."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class TrainConfig:
    """The schedule and bookkeeping of one training run (anything a task does not decide).

    Args:
        epochs: number of epochs.
        steps_per_epoch: optimizer steps per epoch (the data sets repeat).
        learning_rate: peak learning rate for a global batch of ``reference_batch``; scaled linearly
            with the actual global batch.
        reference_batch: batch size ``learning_rate`` was chosen for.
        weight_decay: AdamW decoupled weight decay (passed to the task's optimizers).
        schedule: ``cosine``, ``step`` or ``constant`` (see ``facezoo.train.schedules``).
        schedule_kwargs: extra arguments of the schedule (``boundaries`` for ``step``, ...).
        monitor: validation metric key that chooses the best epoch (``dataset/metric``, or ``score``).
        monitor_mode: ``max`` or ``min``.
        plateau_patience: epochs without improvement before halving the learning rate (0: off).
        early_stopping_patience: epochs without improvement before stopping (0: off).
        checkpoint_every_steps: extra mid-epoch checkpoints (0: only at epoch ends).
        seed: seed for initialisation and data order.
    """

    epochs: int = 10
    steps_per_epoch: int = 100
    learning_rate: float = 2e-3
    reference_batch: int = 64
    weight_decay: float = 0.05
    schedule: str = "cosine"
    schedule_kwargs: dict = dataclasses.field(default_factory=dict)
    monitor: str = "score"
    monitor_mode: str = "max"
    plateau_patience: int = 0
    early_stopping_patience: int = 0
    checkpoint_every_steps: int = 0
    seed: int = 0

    def to_dict(self):
        return dataclasses.asdict(self)


def _size_text(size) -> str:
    return f"{int(size[0])}x{int(size[1])}"


@dataclasses.dataclass
class RecipeConfig:
    """Everything one ``recipes/train_dmtl.py`` run is made of; it writes ``run.json`` and its own command.

    ``command()`` is the exact command line that reproduces the run (``parse_recipe(cfg.argv()) == cfg``,
    tested), so model cards copy it instead of rebuilding it by hand.

    Args:
        datasets: data-set names (``facezoo.data.datasets.DATASETS``); several train one trunk, a branch each.
        data_dirs: name -> data set root, for roots other than ``<data root>/<name>``.
        out: run folder.
        epochs, batch_size (global), learning_rate (at batch 64), weight_decay, seed: the schedule.
        input_size, backbone, width, dropout: the model.
        activation: the backbone's activation (``relu``; ``relu6`` for ImageNet or facezoo-face trunks).
        val_percent: validation share of the split rule.
        head_weights: head name -> loss weight, overriding the data-set recipe's.
        init: warm-start ``.keras`` file (weights copied by path and shape).
        init_branches: data-set renames for the warm start, ``init`` model's data set -> this model's (its
            branches and heads fill this data set's; ``facezoo.models.weights.transfer_weights``).
        max_steps_per_epoch: cap on steps per epoch (smoke tests).
        early_stopping_patience: epochs without improvement before stopping (0: off).
    """

    datasets: tuple = ("celeba",)
    out: str = "runs/dmtl"
    data_dirs: dict = dataclasses.field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 64
    input_size: tuple = (109, 89)
    backbone: str = "resnet18"
    width: float = 0.5
    dropout: float = 0.3
    activation: str = "relu"
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    val_percent: int = 20
    head_weights: dict = dataclasses.field(default_factory=dict)
    init: str | None = None
    init_branches: dict = dataclasses.field(default_factory=dict)
    max_steps_per_epoch: int | None = None
    early_stopping_patience: int = 0
    seed: int = 0

    def __post_init__(self):
        self.datasets = tuple(self.datasets)
        self.input_size = tuple(int(v) for v in self.input_size)
        self.head_weights = {k: float(v) for k, v in self.head_weights.items()}

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["datasets"], d["input_size"] = list(self.datasets), list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RecipeConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def argv(self) -> list[str]:
        """The ``recipes/train_dmtl.py`` arguments that reproduce this config (every field, explicitly)."""
        args = ["--dataset", "+".join(self.datasets), "--epochs", str(self.epochs),
                "--batch-size", str(self.batch_size), "--input-size", _size_text(self.input_size),
                "--backbone", self.backbone, "--width", f"{self.width:g}", "--dropout", f"{self.dropout:g}",
                "--activation", self.activation,
                "--lr", f"{self.learning_rate:g}", "--weight-decay", f"{self.weight_decay:g}",
                "--val-percent", str(self.val_percent), "--seed", str(self.seed)]
        for name, root in sorted(self.data_dirs.items()):
            args += ["--data-dir", f"{name}={root}"]
        for head, weight in sorted(self.head_weights.items()):
            args += ["--head-weight", f"{head}={weight:g}"]
        if self.init:
            args += ["--init", self.init]
        for name, dst in sorted(self.init_branches.items()):
            args += ["--init-branch", f"{name}={dst}"]
        if self.max_steps_per_epoch:
            args += ["--max-steps-per-epoch", str(self.max_steps_per_epoch)]
        if self.early_stopping_patience:
            args += ["--early-stopping-patience", str(self.early_stopping_patience)]
        return args + ["--out", self.out]

    def portable(self) -> "RecipeConfig":
        """This config as a model card records it: run folders as ``runs/<name>``, a warm start from a shipped model
        as ``exported/<name>/<file>`` (the command is run from the repository root), data sets from the default
        data root."""
        import os

        def run_path(path, keep_file):
            path = os.path.normpath(path)
            folder = os.path.dirname(path) if keep_file else path
            parent = os.path.basename(os.path.dirname(folder))
            # A shipped model (exported/<name>/model.keras) stays one; anything else is a run folder.
            name = f"{'exported' if parent == 'exported' else 'runs'}/{os.path.basename(folder)}"
            return f"{name}/{os.path.basename(path)}" if keep_file else name

        return dataclasses.replace(self, out=run_path(self.out, False), data_dirs={},
                                   init=run_path(self.init, True) if self.init else None)

    def command(self) -> str:
        """The shell command that reproduces the run (run from the repository root)."""
        import shlex
        return "python recipes/train_dmtl.py " + " ".join(shlex.quote(a) for a in self.argv())
