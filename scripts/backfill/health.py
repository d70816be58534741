"""The database's health signals a data migration checks between batches, and the limits.

A backfill writes WAL as fast as it can; a hot standby replaying it more slowly falls behind
(its readers see stale data, and a replication slot keeps the primary's WAL on disk until the
standby has it), and autovacuum on the same table competes for the same pages. So, as
GitLab's batched background migrations do, the runner pauses while any signal is over its
limit and says why. The signals, all read on the primary in one query:

- replay lag of every standby: ``pg_stat_replication.replay_lag`` (time) and
  ``pg_wal_lsn_diff(pg_current_wal_insert_lsn(), replay_lsn)`` (bytes). The bytes matter most: while a
  standby's replay is stalled, ``replay_lag`` keeps its last value, the byte distance grows
  ("pg_stat_replication", Monitoring Database Activity, 28.2.4);
- WAL retained by replication slots: ``pg_wal_lsn_diff(pg_current_wal_insert_lsn(), restart_lsn)``
  (``pg_replication_slots``);
- autovacuum working on the table (or its partitions): ``pg_stat_progress_vacuum`` joined to
  ``pg_stat_activity.backend_type = 'autovacuum worker'`` (28.4.5). By default only an
  anti-wraparound one pauses the run (its activity reads ``... (to prevent wraparound)``):
  that vacuum must finish and is never cancelled, while an ordinary one is mostly cleaning
  the dead rows the backfill itself leaves, so pausing for it would stall the run on its own
  wake (a 1M-row run spent half its time paused so in bench_backfill). ``any`` pauses for
  every autovacuum of the table, as GitLab's autovacuum indicator does.

Without the pg_read_all_stats role (pg_monitor) the lag columns read NULL: a signal that
cannot be read does not pause the run.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from scripts.backfill.defaults import (
    DEFAULT_HEALTH_CHECK_INTERVAL_S,
    DEFAULT_MAX_REPLAY_LAG_BYTES,
    DEFAULT_MAX_REPLAY_LAG_S,
    DEFAULT_MAX_SLOT_WAL_BYTES,
    DEFAULT_PAUSE_POLL_S,
)
from scripts.errors import ConfigError

# One round trip. The WAL functions cannot run during recovery, so the WAL distances are read
# only on a primary: CASE evaluates its branches lazily ("Conditional Expressions"). Distances
# run to the insert position, not pg_current_wal_lsn() (the write position): batches commit
# with synchronous_commit off, so their WAL may not be written yet, and a standby that has
# replayed everything written would look 0 bytes behind while the batches' WAL waits for it.
_SIGNALS = text(
    """
    SELECT
      pg_is_in_recovery() AS recovery,
      (SELECT max(extract(epoch FROM r.replay_lag)) FROM pg_stat_replication r) AS lag_s,
      CASE WHEN NOT pg_is_in_recovery() THEN
        (SELECT r.application_name FROM pg_stat_replication r
          ORDER BY pg_wal_lsn_diff(pg_current_wal_insert_lsn(), r.replay_lsn) DESC NULLS LAST LIMIT 1)
      END AS standby,
      CASE WHEN NOT pg_is_in_recovery() THEN
        (SELECT max(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), r.replay_lsn)) FROM pg_stat_replication r)
      END AS lag_bytes,
      CASE WHEN NOT pg_is_in_recovery() THEN
        (SELECT max(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), s.restart_lsn))
           FROM pg_replication_slots s WHERE s.restart_lsn IS NOT NULL)
      END AS slot_bytes,
      v.autovacuums,
      v.wraparound
    FROM (
      SELECT count(*) AS autovacuums,
             count(*) FILTER (WHERE a.query LIKE '%(to prevent wraparound)') AS wraparound
      FROM pg_stat_progress_vacuum p JOIN pg_stat_activity a ON a.pid = p.pid
      WHERE a.backend_type = 'autovacuum worker'
        AND (p.relid = :oid OR p.relid IN (SELECT relid FROM pg_partition_tree(:oid)))
    ) AS v
    """
)


AUTOVACUUM_MODES = ("wraparound", "any", "never")


@dataclass(frozen=True)
class HealthLimits:
    """Pause before a batch while any signal is over its limit; ``enabled=False`` checks none."""

    enabled: bool = True
    max_replay_lag_s: float = DEFAULT_MAX_REPLAY_LAG_S
    max_replay_lag_bytes: int = DEFAULT_MAX_REPLAY_LAG_BYTES
    max_slot_wal_bytes: int = DEFAULT_MAX_SLOT_WAL_BYTES
    pause_on_autovacuum: str = "wraparound"  # one of AUTOVACUUM_MODES
    poll_s: float = DEFAULT_PAUSE_POLL_S
    # Read the signals before a batch only when this long has passed since the last read (0:
    # before every batch); while paused they are read every poll_s.
    check_interval_s: float = DEFAULT_HEALTH_CHECK_INTERVAL_S

    def __post_init__(self) -> None:
        if self.pause_on_autovacuum not in AUTOVACUUM_MODES:
            raise ConfigError(
                f"pause on autovacuum {self.pause_on_autovacuum!r} is not one of"
                f" {', '.join(AUTOVACUUM_MODES)}",
                "use wraparound (the default), any or never",
            )
        for name in (
            "max_replay_lag_s",
            "max_replay_lag_bytes",
            "max_slot_wal_bytes",
            "poll_s",
            "check_interval_s",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(
                    f"{name.replace('_', ' ')} {getattr(self, name)} is negative", "use 0 or more"
                )


@dataclass(frozen=True)
class Signals:
    replay_lag_s: float | None
    standby: str | None  # the standby furthest behind
    replay_lag_bytes: int | None
    slot_wal_bytes: int | None
    autovacuums: int
    wraparound_autovacuums: int = 0


def read_signals(conn: Connection, table_oid: int) -> Signals | None:
    """The signals now, or None on a server in recovery (no WAL position of its own)."""
    row = conn.execute(_SIGNALS, {"oid": table_oid}).one()
    if row.recovery:
        return None
    return Signals(
        replay_lag_s=float(row.lag_s) if row.lag_s is not None else None,
        standby=row.standby,
        replay_lag_bytes=int(row.lag_bytes) if row.lag_bytes is not None else None,
        slot_wal_bytes=int(row.slot_bytes) if row.slot_bytes is not None else None,
        autovacuums=int(row.autovacuums),
        wraparound_autovacuums=int(row.wraparound),
    )


def _mb(n: float) -> str:
    return f"{n / 1024**2:.1f} MB"


def reasons(signals: Signals | None, limits: HealthLimits, table: str) -> list[str]:
    """Why the run must wait now, one phrase per signal over its limit; [] when it may go on."""
    if signals is None or not limits.enabled:
        return []
    why = []
    standby = f"standby {signals.standby!r}" if signals.standby else "a standby"
    if signals.replay_lag_bytes is not None and signals.replay_lag_bytes > limits.max_replay_lag_bytes:
        why.append(
            f"{standby} is {_mb(signals.replay_lag_bytes)} of WAL behind"
            f" (limit {_mb(limits.max_replay_lag_bytes)})"
        )
    if signals.replay_lag_s is not None and signals.replay_lag_s > limits.max_replay_lag_s:
        why.append(
            f"{standby} replays {signals.replay_lag_s:.1f}s behind (limit {limits.max_replay_lag_s:g}s)"
        )
    if signals.slot_wal_bytes is not None and signals.slot_wal_bytes > limits.max_slot_wal_bytes:
        why.append(
            f"replication slots retain {_mb(signals.slot_wal_bytes)} of WAL"
            f" (limit {_mb(limits.max_slot_wal_bytes)})"
        )
    if limits.pause_on_autovacuum == "any" and signals.autovacuums:
        why.append(f"autovacuum is working on {table}")
    elif limits.pause_on_autovacuum == "wraparound" and signals.wraparound_autovacuums:
        why.append(f"an anti-wraparound autovacuum is working on {table}")
    return why
