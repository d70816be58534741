"""One step of partition work: its own short transaction (or a savepoint in the caller's), UTC
and a bounded lock wait for that transaction only, retried when it loses a lock race."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from scripts.db.engine import connection_lost, first_line
from scripts.db.retry import Backoff, RetriesExhausted, with_retries
from scripts.db.sqlstate import INSUFFICIENT_PRIVILEGE, sqlstate
from scripts.errors import AlpDbError, DatabaseUnreachable, LockTimeout, PartitionError, PermissionDenied
from scripts.partitions.defaults import RETRY_BACKOFF_S
from scripts.partitions.period_math import BOUND_TIMEZONE

T = TypeVar("T")

NOTHING_KEPT = "nothing of that step was kept; see `alp-db partitions list`, then retry"
RESUME = "once the server is back, run the same command again: it resumes where this one stopped"


@contextmanager
def pinned_session(conn: Connection, lock_timeout: str | None) -> Iterator[None]:
    """UTC (so bounds print as UTC) and a bounded lock wait, for our transaction only.

    Inside a caller's transaction (a savepoint, e.g. in a revision) SET LOCAL would outlive
    us, so the caller's values are put back afterwards; a failed savepoint undoes them itself.
    """
    settings = {"TimeZone": BOUND_TIMEZONE}
    if lock_timeout is not None:
        settings["lock_timeout"] = lock_timeout
    saved = {
        name: conn.execute(text("SELECT current_setting(:n)"), {"n": name}).scalar_one() for name in settings
    }
    for name, value in settings.items():
        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})
    yield
    for name, value in saved.items():
        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})


@contextmanager
def transaction(conn: Connection) -> Iterator[None]:
    """Our own transaction, or a savepoint inside the caller's (a revision's)."""
    with conn.begin_nested() if conn.in_transaction() else conn.begin():
        yield


def describe_failure(conn: Connection, exc: DBAPIError, what: str, left: str = NOTHING_KEPT) -> AlpDbError:
    """One line for a statement the server refused (our transaction was rolled back).

    ``left`` says what earlier steps left behind and how to finish; the default is only true
    when the failed step was the first to change anything.
    """
    detail = first_line(exc, conn.engine.url)
    if connection_lost(exc):
        # a server restart or a terminated backend: the step's transaction died with it
        hint = (
            f"nothing of that step was kept; {RESUME}"
            if left == NOTHING_KEPT
            else f"{left}, once the server is back"
        )
        return DatabaseUnreachable(f"lost the connection to the database during {what}: {detail}", hint)
    if sqlstate(exc) == INSUFFICIENT_PRIVILEGE:
        return PermissionDenied(f"{what}: {detail}", "run it as the table's owner")
    return PartitionError(f"{what} failed: {detail}", left)


def run_step(
    conn: Connection,
    fn: Callable[[], T],
    *,
    what: str,
    lock_timeout: str,
    retries: int,
    on_retry: Callable[[int], None] | None = None,
    left: str = NOTHING_KEPT,
) -> tuple[T, int]:
    """``fn()`` (one transaction) and the retries it took; lost lock races are retried with
    scripts.db.retry's backoff, and giving up is one LockTimeout line."""

    def retrying(attempt: int, _exc: BaseException) -> None:
        if on_retry is not None:
            on_retry(attempt)

    try:
        return with_retries(fn, retries=retries, backoff=Backoff(base_s=RETRY_BACKOFF_S), on_retry=retrying)
    except RetriesExhausted:
        raise LockTimeout(
            f"lock timeout: {what} waited {lock_timeout} for a lock {retries + 1} times;"
            " another session holds it",
            "find it in pg_stat_activity / pg_locks, then retry, or raise --lock-timeout"
            + ("" if left == NOTHING_KEPT else f"; {left}"),
        ) from None
    except DBAPIError as exc:
        raise describe_failure(conn, exc, what, left) from exc
