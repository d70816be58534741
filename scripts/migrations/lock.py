"""One migrator at a time: a session-level PostgreSQL advisory lock on its own connection.

The waiter polls ``pg_try_advisory_lock`` on an autocommit connection instead of blocking
in ``pg_advisory_lock``: a blocked call is a statement in progress whose transaction
``CREATE INDEX CONCURRENTLY`` in the lock holder would wait for — a deadlock that
PostgreSQL cannot see (see "Building Indexes Concurrently" in the CREATE INDEX docs).
Between two polls the waiter holds no transaction and no snapshot.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection

from scripts.errors import LockTimeout

# One 64-bit key for "migrations of this database" (advisory locks are per database).
MIGRATION_LOCK_KEY = int.from_bytes(hashlib.sha256(b"alp-db:migrations").digest()[:8], "big", signed=True)
FIRST_POLL_S = 0.02
MAX_POLL_S = 0.5


def holder_pid(conn: Connection, key: int = MIGRATION_LOCK_KEY) -> int | None:
    """The backend holding the advisory lock ``key`` in this database, if any."""
    hi, lo = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    return conn.scalar(
        text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"
        ),
        {"hi": hi, "lo": lo},
    )


@contextmanager
def advisory_lock(
    conn: Connection,
    *,
    wait_seconds: float,
    key: int = MIGRATION_LOCK_KEY,
    on_wait: Callable[[int | None], None] | None = None,
) -> Iterator[None]:
    """Hold the lock for the duration of the block; ``conn`` must be in AUTOCOMMIT mode."""
    deadline = time.monotonic() + wait_seconds
    delay = FIRST_POLL_S
    announced = False
    while not conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}):
        if not announced and on_wait is not None:
            on_wait(holder_pid(conn, key))
            announced = True
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"another migration has held the migration lock for over {wait_seconds:g}s"
                f" (backend pid {holder_pid(conn, key)})",
                "wait for it to finish, or raise ALP_DB_MIGRATION_LOCK_WAIT",
            )
        time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
        delay = min(delay * 2, MAX_POLL_S)
    try:
        yield
    finally:
        if not conn.closed and not conn.invalidated:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
