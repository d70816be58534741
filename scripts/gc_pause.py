"""Pausing Python's cyclic garbage collector around a burst of allocation that makes no garbage.

Reading a catalog and building the comparison allocates hundreds of thousands of objects that
all stay alive until the report is built. Each time the allocation count passes the thresholds,
CPython's collector walks the generations, and a full (generation 2) pass walks every object
in the process, the models' 1,000 ``Table`` objects included: 0.2-0.27 s each, measured on the
1,000-table benchmark schema, where a 0.7 s comparison took 0.9-1.3 s in the runs that hit one
or two. Reference counting still frees everything that is not in a cycle while the collector is
paused; cycles made meanwhile are collected at the first collection after it resumes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic collection inside the block; the collector's state is put back afterwards
    (left off when the caller had turned it off)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
