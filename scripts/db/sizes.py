"""Sizes as people read them, one way everywhere: decimal units, "129.1 kB" (rich's filesize).

PostgreSQL's pg_size_pretty uses powers of 1024 but writes "kB" and "MB", so its figures
disagree with ``ls -h --si``, a file manager or a cloud bill; every size alp-db prints comes
from bytes through :func:`human_size` instead.
"""

from __future__ import annotations


def human_size(size_bytes: int | float | None) -> str:
    from rich.filesize import decimal

    return "" if size_bytes is None else decimal(int(size_bytes))
