"""Where a migration runs: never on a standby; and after a heavy revision, how far the standbys are.

A revision that took ACCESS EXCLUSIVE (or rewrote a table, which takes it) is replayed on every
hot standby under the same lock, where it cancels conflicting queries or stalls replay
(PostgreSQL docs, "Hot Standby": Handling Query Conflicts). So ``migrate`` reports each
standby's replay lag after such a revision and, with ``--wait-for-replicas SECONDS``, waits
for them to replay it before the next revision, so that conflicts and lag do not pile up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection

from scripts.db.urls import redact
from scripts.errors import ReplicaLagging, StandbyDatabase

POLL_S = 0.2


def refuse_standby(conn: Connection, url: URL) -> bool:
    """Before anything is touched (pg_is_in_recovery: "System Administration Functions").

    Returns whether any standby streams from this primary now: without one, the run skips the
    per-revision look at standbys (a lock query and two reads of pg_stat_replication each).
    """
    in_recovery, streaming = conn.execute(
        text("SELECT pg_is_in_recovery(), EXISTS (SELECT FROM pg_stat_replication)")
    ).one()
    if in_recovery:
        raise StandbyDatabase(
            f"{redact(url)} is a standby (in recovery): it cannot be migrated",
            "point DATABASE_URL (or --database-url) at the primary",
        )
    return bool(streaming)


def took_access_exclusive(conn: Connection) -> bool:
    """Inside a revision's transaction: does it hold ACCESS EXCLUSIVE on a relation?"""
    return bool(
        conn.scalar(
            text(
                "SELECT EXISTS (SELECT FROM pg_locks WHERE pid = pg_backend_pid()"
                " AND locktype = 'relation' AND mode = 'AccessExclusiveLock' AND granted)"
            )
        )
    )


@dataclass(frozen=True)
class StandbyLag:
    name: str
    bytes_behind: int
    replay_lag: str | None

    def __str__(self) -> str:
        lag = f", replay lag {self.replay_lag}" if self.replay_lag else ""
        return f"{self.name}: {self.bytes_behind} bytes behind{lag}"


def standby_lag(conn: Connection, lsn: str | None = None) -> list[StandbyLag]:
    """Each standby streaming from this primary, and how far its replay is behind ``lsn``
    (default: the current WAL position); pg_stat_replication, "The Cumulative Statistics System"."""
    rows = conn.execute(
        text(
            "SELECT coalesce(nullif(application_name, ''), client_addr::text, pid::text),"
            " greatest(pg_wal_lsn_diff(coalesce(CAST(:lsn AS pg_lsn), pg_current_wal_lsn()),"
            " coalesce(replay_lsn, '0/0')), 0)::bigint, replay_lag::text"
            " FROM pg_stat_replication ORDER BY 1"
        ),
        {"lsn": lsn},
    ).all()
    return [StandbyLag(str(name), int(behind), lag) for name, behind, lag in rows]


def after_heavy_revision(
    conn: Connection, revision: str, *, wait_seconds: float, notice: Callable[[str], None]
) -> list[StandbyLag]:
    """Report the standbys' lag after ``revision``; with ``wait_seconds`` > 0, wait until every
    one has replayed it, or fail before the next revision saying which is behind."""
    # the insert position: with synchronous_commit off the commit may not be written yet
    lsn = str(conn.scalar(text("SELECT pg_current_wal_insert_lsn()::text")))
    lags = standby_lag(conn, lsn)
    for lag in lags:
        notice(f"after revision {revision} (ACCESS EXCLUSIVE): standby {lag}")
    if wait_seconds <= 0 or not lags:
        return lags
    deadline = time.monotonic() + wait_seconds
    while any(lag.bytes_behind > 0 for lag in lags):
        if time.monotonic() >= deadline:
            behind = next(lag for lag in lags if lag.bytes_behind > 0)
            raise ReplicaLagging(
                f"standby {behind.name} has not replayed revision {revision} after {wait_seconds:g}s"
                f" ({behind.bytes_behind} bytes behind); the next revisions were not run",
                "check the standby (pg_stat_replication), then run migrate again",
            )
        time.sleep(POLL_S)
        lags = standby_lag(conn, lsn)
    notice(f"standbys replayed revision {revision}")
    return lags
