"""Delimited label tables (CSV, TSV) read with the line numbers and header checks that errors need.

The readers of header-first tables (Adience fold files, MORPH II, FotW, FER-2013 CSV, the generic
``id,label`` layout) go through ``iter_table`` so that all of them treat a header, a byte-order
mark, blank lines and short rows the same way, and word their errors alike.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
from typing import Iterator, Sequence

from facezoo.data.records import DataFormatError
from facezoo.errors import MissingDataError


@dataclasses.dataclass(frozen=True)
class TableRow:
    """One data row of a table.

    Attributes:
        line: 1-based line number of the row in its file (the last line, for a quoted multi-line
            field).
        values: column name (stripped, lower case) -> field text (stripped); empty when ``error``
            is set.
        error: why the row cannot be read (wrong number of fields), or None.
    """

    line: int
    values: dict
    error: str | None = None


def table_columns(path: str, required: Sequence[str] = (), *, delimiter: str = ",") -> list[str]:
    """The column names of a table's header line, stripped and in lower case.

    Args:
        path: the table file.
        required: column names (lower case) the header must contain; others are allowed.
        delimiter: field separator (``","`` for CSV, ``"\\t"`` for TSV).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataFormatError: the file is empty, or its header lacks a required column or repeats one.
    """
    with _open_table(path, required, delimiter) as (columns, _rows):
        return columns


def iter_table(path: str, required: Sequence[str] = (), *, delimiter: str = ",") -> Iterator[TableRow]:
    """Yields the data rows of a table whose first line names its columns.

    Column names are compared stripped and in lower case (``" Usage"`` is ``usage``). Blank lines
    are skipped. A row with more or fewer fields than the header is yielded with ``error`` set, so
    the caller can report it and go on.

    Args:
        path: the table file.
        required: column names (lower case) the header must contain; others are allowed.
        delimiter: field separator (``","`` for CSV, ``"\\t"`` for TSV).

    Yields:
        ``TableRow`` per non-blank line after the header.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataFormatError: the file is empty, or its header lacks a required column or repeats one.
    """
    with _open_table(path, required, delimiter) as (columns, rows):
        for fields in rows:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if len(fields) != len(columns):
                yield TableRow(rows.line_num, {}, f"expected {len(columns)} fields {columns}, got "
                                                  f"{len(fields)}: {delimiter.join(fields)[:120]!r}")
                continue
            yield TableRow(rows.line_num, {c: v.strip() for c, v in zip(columns, fields)})


@contextlib.contextmanager
def _open_table(path: str, required: Sequence[str], delimiter: str):
    """Opens a table and checks its header: yields ``(columns, csv reader past the header)``."""
    if not os.path.isfile(path):
        raise MissingDataError(f"label table {path!r} does not exist")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f, delimiter=delimiter)
        yield _columns(path, next(rows, None), required), rows


def _columns(path: str, header: list[str] | None, required: Sequence[str]) -> list[str]:
    """Normalises and checks a header row (see ``table_columns``)."""
    if header is None:
        raise DataFormatError(f"{path}: the file is empty; expected a header line naming {list(required)}")
    columns = [c.strip().lower() for c in header]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise DataFormatError(f"{path}:1: header repeats column(s) {repeated}; found header {columns}")
    missing = [c for c in required if c not in columns]
    if missing:
        raise DataFormatError(
            f"{path}:1: header lacks column(s) {missing}; expected at least {list(required)}, "
            f"found {columns}")
    return columns


def examples(items: Sequence[str], limit: int = 5) -> str:
    """Formats the first ``limit`` items of a problem list for an error message, with the total."""
    shown = "; ".join(str(i) for i in items[:limit])
    more = len(items) - limit
    return shown + (f" (and {more} more)" if more > 0 else "")
