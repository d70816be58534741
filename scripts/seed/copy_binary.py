"""PostgreSQL's binary COPY format, encoded from numpy columns without a per-row Python loop.

The format (PostgreSQL docs, COPY, "Binary Format"): a fixed header, then per tuple an int16
field count and, per field, an int32 byte length (-1 for NULL) followed by the value in the
type's binary send/receive representation, all big-endian; an int16 -1 ends the data.

A row whose fields all have a fixed width is one record of a numpy structured dtype, so a
whole table is ``array.tobytes()``. Text-like fields (text, varchar, char, enum labels — their
binary form is the UTF-8 text) and NULLs vary the width: rows are grouped by their tuple of
field widths, one structured array per group. COPY does not care about the order of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)

# Binary timestamps count microseconds from 2000-01-01 00:00 UTC (PostgreSQL's epoch).
PG_EPOCH_UNIX_US = 946_684_800 * 1_000_000

# kind -> numpy dtype of the value as the server's *_recv function reads it.
FIXED_KINDS: dict[str, np.dtype[Any]] = {
    "uuid": np.dtype("S16"),
    "timestamptz": np.dtype(">i8"),
    "float8": np.dtype(">f8"),
    "int4": np.dtype(">i4"),
    "bool": np.dtype("u1"),
}
TEXT_KIND = "text"

# One table's COPY: table, columns, rows, the binary stream (payload()).
Encoded = tuple[str, list[str], int, bytes]


@dataclass
class Column:
    """One column of a COPY: ``kind`` is a key of FIXED_KINDS or ``"text"``.

    Fixed kinds take a numpy array (uuid: ``(n, 16)`` uint8; timestamptz: int64 microseconds
    since the Unix epoch); ``valid`` marks non-NULL rows (all when None). Text takes a sequence
    of ``str`` or ``None`` (NULL).
    """

    name: str
    kind: str
    values: Any
    valid: np.ndarray | None = None


def _fixed_values(col: Column) -> np.ndarray:
    dtype = FIXED_KINDS[col.kind]
    if col.kind == "uuid":
        raw = np.ascontiguousarray(col.values, dtype=np.uint8)
        return raw.view("S16").reshape(-1)
    if col.kind == "timestamptz":
        return (np.asarray(col.values, dtype=np.int64) - PG_EPOCH_UNIX_US).astype(dtype)
    return np.asarray(col.values).astype(dtype)


def encode(columns: Sequence[Column]) -> bytes:
    """The tuples of a binary COPY (no header or trailer) for the given columns."""
    if not columns:
        return b""
    n = len(columns[0].values)
    prepared: list[tuple[str, Any, np.ndarray]] = []  # (kind, values, widths)
    for col in columns:
        if col.kind == TEXT_KIND:
            data = np.array([None if v is None else v.encode() for v in col.values], dtype=object)
            widths = np.fromiter((-1 if v is None else len(v) for v in data), dtype=np.int32, count=n)
            prepared.append((TEXT_KIND, data, widths))
        else:
            values = _fixed_values(col)
            width = FIXED_KINDS[col.kind].itemsize
            widths = np.full(n, width, dtype=np.int32)
            if col.valid is not None:
                widths[~np.asarray(col.valid, dtype=bool)] = -1
            prepared.append((col.kind, values, widths))
    varying = [i for i, (kind, _, w) in enumerate(prepared) if kind == TEXT_KIND or (w < 0).any()]
    if not varying:
        return _encode_group(prepared, np.arange(n), [int(w[0]) if n else 0 for _, _, w in prepared])
    key = np.stack([prepared[i][2] for i in varying], axis=1)
    shapes, group_of = np.unique(key, axis=0, return_inverse=True)
    order = np.argsort(group_of.reshape(-1), kind="stable")
    bounds = np.searchsorted(group_of.reshape(-1)[order], np.arange(len(shapes) + 1))
    parts = []
    for g, shape in enumerate(shapes):
        rows = order[bounds[g] : bounds[g + 1]]
        group_widths = [int(w[0]) if n else 0 for _, _, w in prepared]
        for slot, i in enumerate(varying):
            group_widths[i] = int(shape[slot])
        parts.append(_encode_group(prepared, rows, group_widths))
    return b"".join(parts)


def _encode_group(prepared: list[tuple[str, Any, np.ndarray]], rows: np.ndarray, widths: list[int]) -> bytes:
    """Rows sharing one tuple of field widths, as one structured array."""
    fields: list[tuple[str, Any]] = [("count", ">i2")]
    for i, (kind, _, _) in enumerate(prepared):
        fields.append((f"len{i}", ">i4"))
        if widths[i] > 0:
            fields.append((f"val{i}", f"S{widths[i]}" if kind == TEXT_KIND else FIXED_KINDS[kind]))
    out = np.empty(len(rows), dtype=np.dtype(fields))
    out["count"] = len(prepared)
    for i, (kind, values, _) in enumerate(prepared):
        out[f"len{i}"] = widths[i]
        if widths[i] > 0:
            out[f"val{i}"] = values[rows].astype(f"S{widths[i]}") if kind == TEXT_KIND else values[rows]
    return out.tobytes()


def payload(columns: Sequence[Column]) -> bytes:
    """A complete binary COPY stream: header, tuples, trailer."""
    return HEADER + encode(columns) + TRAILER
