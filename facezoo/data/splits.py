"""The one split policy: validation by a salted hash of the identity, official test splits kept aside.

Every path that splits data — training recipes, ``facezoo data convert --val-percent``, ``facezoo
evaluate`` and the model cards' ``split`` text — calls ``split_records`` or ``split_rule``, so they agree.
"""
from __future__ import annotations

from facezoo.data.records import identity_split

SPLIT_SALT = "facezoo-val"
DEFAULT_VAL_PERCENT = 20


def split_records(records, val_percent: int = DEFAULT_VAL_PERCENT, official: bool = False):
    """Re-splits every record not in an official ``test`` split into ``train``/``val`` by identity.

    With ``official`` the reader's own splits are kept (data sets whose published validation split is the
    one every paper reports on, such as FER-2013's PublicTest).

    A record goes to ``val`` iff ``int(md5(f"{SPLIT_SALT}:{key}"), 16) % 100 < val_percent`` where ``key`` is
    its identity (its ``source`` when it has none), so no person is on both sides and the split is the same
    on every machine; official ``val`` splits are re-split the same way, ``test`` records stay ``test``.
    """
    if not 0 < int(val_percent) < 100:
        raise ValueError(f"val_percent must be between 1 and 99, got {val_percent}")
    records = list(records)
    if official:
        return records
    test = [r for r in records if r.split == "test"]
    rest = identity_split([r for r in records if r.split != "test"], val_percent=int(val_percent), salt=SPLIT_SALT)
    return rest + test


def split_rule(unit: str, val_percent: int = DEFAULT_VAL_PERCENT, official: bool = False) -> str:
    """The rule of ``split_records`` in words, for model cards; ``unit`` says what the key is."""
    if official:
        return f"the official splits ({unit})"
    return (f"{unit} k is validation iff int(md5('{SPLIT_SALT}:'+k), 16) % 100 < {val_percent}; "
            "official test splits are kept aside")
