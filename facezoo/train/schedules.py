"""Learning-rate schedules as plain functions of the epoch fraction, and ReduceLROnPlateau.

The trainer assigns ``base_lr * schedule(epoch_float) * plateau.factor`` before every step, so
cosine, step decay (the Adience report: ×0.1 at epochs 20/50/75) and plateau reduction compose.
"""
from __future__ import annotations

import math


def cosine(total_epochs: float, warmup_epochs: float = 1.0, floor: float = 0.01):
    """Linear warm-up then cosine decay to ``floor`` × base at ``total_epochs``."""
    def f(epoch: float) -> float:
        if epoch < warmup_epochs:
            return (epoch + 1e-3) / warmup_epochs
        t = min(1.0, (epoch - warmup_epochs) / max(1e-9, total_epochs - warmup_epochs))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
    return f


def step_decay(boundaries=(20, 50, 75), factor: float = 0.1):
    """Multiplies by ``factor`` at each boundary epoch."""
    def f(epoch: float) -> float:
        return factor ** sum(epoch >= b for b in boundaries)
    return f


def constant():
    return lambda epoch: 1.0


SCHEDULES = {"cosine": cosine, "step": step_decay, "constant": constant}


def make_schedule(name: str, epochs: int, **kwargs):
    """A schedule by name (``cosine``, ``step``, ``constant``)."""
    if name == "cosine":
        return cosine(epochs, **kwargs)
    if name in SCHEDULES:
        return SCHEDULES[name](**kwargs)
    raise ValueError(f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)}")


class ReduceOnPlateau:
    """Multiplies the learning rate by ``factor`` after ``patience`` epochs without improvement."""

    def __init__(self, factor=0.5, patience=3, min_factor=1e-3, mode="max"):
        self.factor, self.patience, self.min_factor, self.mode = factor, patience, min_factor, mode
        self.current = 1.0
        self.best = None
        self.wait = 0

    def update(self, value: float) -> float:
        better = self.best is None or (value > self.best if self.mode == "max" else value < self.best)
        if better:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.current = max(self.min_factor, self.current * self.factor)
                self.wait = 0
        return self.current

    def state(self):
        return {"current": self.current, "best": self.best, "wait": self.wait}

    def load(self, state):
        self.current, self.best, self.wait = state["current"], state["best"], state["wait"]


class EarlyStopping:
    """Stops after ``patience`` epochs without improvement of the monitored value."""

    def __init__(self, patience=8, mode="max"):
        self.patience, self.mode = patience, mode
        self.best = None
        self.wait = 0

    def update(self, value: float) -> bool:
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best, self.wait = value, 0
            return False
        self.wait += 1
        return self.stopped

    @property
    def stopped(self) -> bool:
        """True once ``patience`` epochs passed without improvement (also after ``load``)."""
        return self.wait >= self.patience

    def state(self):
        return {"best": self.best, "wait": self.wait}

    def load(self, state):
        self.best, self.wait = state["best"], state["wait"]
