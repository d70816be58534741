"""The one way tests wait: poll the database (or any probe) until a condition holds.

Tests synchronise on what the database says — a row in ``pg_locks``, ``pg_stat_activity``,
a checkpoint — never on the clock. The timeout is a guard against a hung test, not a timing
assertion: it is generous, and a test that reaches it fails saying what it waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import URL, Engine

from scripts.db.engine import make_engine

T = TypeVar("T")

TIMEOUT_S = 60.0
INTERVAL_S = 0.02


def wait_until(probe: Callable[[], T], what: str, *, timeout_s: float = TIMEOUT_S) -> T:
    """Call ``probe`` until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up waiting for {what} (last value: {value!r})")
        time.sleep(INTERVAL_S)


def wait_for_sql(
    target: Engine | URL,
    statement: str,
    params: Mapping[str, Any] | None = None,
    *,
    done: Callable[[Any], bool] = bool,
    timeout_s: float = TIMEOUT_S,
) -> Any:
    """Run ``statement`` (one transaction per look, so statistics snapshots are re-read)
    until ``done(first column)`` holds; return that value."""
    engine = make_engine(target) if isinstance(target, URL) else target
    last: list[Any] = [None]

    def probe() -> bool:
        with engine.connect() as conn:
            last[0] = conn.execute(text(statement), dict(params or {})).scalar()
        return done(last[0])

    try:
        wait_until(probe, statement, timeout_s=timeout_s)
    finally:
        if engine is not target:
            engine.dispose()
    return last[0]
