"""The command-line options recipes share; importing this module stays cheap (no TensorFlow), so
``--help`` answers at once."""
from __future__ import annotations

import argparse
import os

# Where recipes look for data sets by default: $FACEZOO_DATA, else ../shared/data beside the checkout.
DEFAULT_DATA_ROOT = os.environ.get(
    "FACEZOO_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))

def parse_size(text: str) -> tuple[int, int]:
    """``"S"`` or ``"HxW"`` -> ``(H, W)``; an ``argparse`` type for ``--input-size``."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected S or HxW (e.g. 112 or 109x89), got {text!r}")
    return (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def add_training_arguments(parser: argparse.ArgumentParser, *, data_dir: str, epochs: int, batch_size: int,
                           input_size: str, width: float, out: str, learning_rate: float = 2e-3,
                           weight_decay: float = 5e-4):
    """Adds the options every single-data-set recipe shares (``--data-dir`` ... ``--out``)."""
    parser.add_argument("--data-dir", default=data_dir, help=f"data set root (default {data_dir})")
    parser.add_argument("--epochs", type=int, default=epochs, help=f"epochs (default {epochs})")
    parser.add_argument("--batch-size", type=int, default=batch_size, help=f"global batch size (default {batch_size})")
    parser.add_argument("--input-size", type=parse_size, default=parse_size(input_size),
                        help=f"model input, S or HxW (default {input_size})")
    parser.add_argument("--width", type=float, default=width, help=f"backbone channel multiplier (default {width})")
    parser.add_argument("--lr", type=float, default=learning_rate,
                        help=f"peak learning rate at batch 64, scaled linearly (default {learning_rate})")
    parser.add_argument("--weight-decay", type=float, default=weight_decay,
                        help=f"AdamW decoupled weight decay (default {weight_decay})")
    parser.add_argument("--max-steps-per-epoch", type=int, default=None, help="cap steps per epoch (smoke tests)")
    parser.add_argument("--threads", type=int, default=None, help="TensorFlow CPU threads (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation and data order")
    parser.add_argument("--out", default=out, help=f"run folder (default {out})")
