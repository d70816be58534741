"""Pausing Python's cyclic garbage collector around bursts of allocation that make no garbage.

Two such bursts, both measured:

- **A command's imports.** ``alp-db migrate`` imports click, SQLAlchemy, Alembic and psycopg2:
  about 0.57 s, during which the collector ran 129 young, 12 middle and one full collection,
  50 ms in all, while every object made stays alive (modules, classes, functions). The CLI
  pauses the collector for a command (``until_connecting``) and resumes it when the command
  first makes an engine (``scripts.db.engine.make_engine`` calls ``resume``), which is where
  the work begins whose length the data decides (revisions, batches), or when the command ends;
  what start-up made is frozen (``gc.freeze``) so no later collection walks it again.
- **A schema comparison.** Reading a catalog and building the comparison allocates hundreds of
  thousands of objects that all stay alive until the report is built. A full collection walks
  every object in the process, the models' 1,000 ``Table`` objects included: 0.2-0.27 s each
  on the 1,000-table benchmark schema, where a 0.7 s comparison took 0.9-1.3 s in the runs
  that hit one or two. ``validate_schema`` runs under ``paused_gc``.

Reference counting still frees everything that is not in a cycle while the collector is
paused; cycles made meanwhile are collected at the first collection after it resumes. The
collector is only ever turned back on if it was on before the first pause (a caller that runs
with it off keeps it off). Mercurial pauses it the same way (``util.nogc``) around building
large structures.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


class _Pauses:
    """Who holds the collector off: scoped holds (paused_gc) and the command's start-up."""

    holds = 0
    starting = False
    froze = False  # start-up's objects are in the permanent generation (gc.freeze)
    restore = False  # whether the collector was on before the first pause


def _hold() -> None:
    if _Pauses.holds == 0 and not _Pauses.starting:
        _Pauses.restore = gc.isenabled()
    gc.disable()


def _release() -> None:
    if _Pauses.holds == 0 and not _Pauses.starting and _Pauses.restore:
        gc.enable()


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic collection inside the block, however it is nested with other pauses."""
    _hold()
    _Pauses.holds += 1
    try:
        yield
    finally:
        _Pauses.holds -= 1
        _release()


@contextmanager
def until_connecting() -> Iterator[None]:
    """A command's start-up: paused until ``resume()`` (its first engine) or the block's end."""
    _hold()
    _Pauses.starting = True
    try:
        yield
    finally:
        resume()
        if _Pauses.froze:  # the command is over: its objects are collectable like any others
            _Pauses.froze = False
            gc.unfreeze()


def resume() -> None:
    """End the start-up pause, if one is on (scoped holds keep theirs).

    What start-up made is frozen first (gc.freeze): objects allocated while the collector is
    off all wait in its youngest generation, and the first collection after it resumes would
    walk every one of them (27-30 ms after migrate's imports, measured) to find no garbage.
    """
    if _Pauses.starting:
        _Pauses.starting = False
        if _Pauses.restore:
            gc.freeze()
            _Pauses.froze = True
        _release()
