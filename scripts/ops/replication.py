"""Replication as ``health`` sees it: standbys, their lag, replication slots, conflict settings.

On a primary (PostgreSQL docs, 28.2 "The Cumulative Statistics System", ``pg_stat_replication``):
one row per standby with its state, how far behind it is in bytes of WAL (sent, replayed)
and in time (``replay_lag``), and whether it sends hot-standby feedback (``backend_xmin`` is
set only then). ``pg_replication_slots``: a slot keeps every WAL segment from its
``restart_lsn`` on, so an *inactive* slot — its standby gone — fills the disk (27.2.6).

On a standby: how much received WAL is not replayed yet, whether replay is paused, and the
two settings that decide what a long revision on the primary does to it ("Handling Query
Conflicts", 27.4.2): ``max_standby_streaming_delay`` (replay waits that long for conflicting
queries, then cancels them; -1 waits forever, so lag grows) and ``hot_standby_feedback``
(off: vacuum on the primary may remove rows a query here still needs, and it is cancelled).

The lag figures need superuser or ``pg_read_all_stats``; without it PostgreSQL shows NULLs,
which are reported as unknown, never as zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scripts.findings import Finding, Severity

# Seconds a standby may trail in replay before health warns (a read replica that far behind
# serves stale reads; GitLab pauses background migrations at about this order of lag).
REPLICA_LAG_SECONDS_MAX = 60.0
# Bytes of WAL a standby may trail in replay, or a slot may retain, before health warns.
REPLICA_LAG_BYTES_MAX = 1_000_000_000
SLOT_RETAINED_BYTES_MAX = 1_000_000_000

PRIMARY, STANDBY = "primary", "standby"
PROBLEM, NOTE = Severity.ERROR, Severity.WARNING  # exit 1 / listed only

STANDBYS_SQL = """
SELECT r.application_name AS name,
       coalesce(host(r.client_addr), 'local socket') AS client,
       r.state,
       r.sync_state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), r.sent_lsn)::bigint AS sent_lag_bytes,
       pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint AS replay_lag_bytes,
       extract(epoch FROM r.write_lag)::float AS write_lag_seconds,
       extract(epoch FROM r.replay_lag)::float AS replay_lag_seconds,
       r.backend_xmin IS NOT NULL AS sends_feedback
FROM pg_stat_replication r
ORDER BY r.application_name, r.pid
"""
# pg_current_wal_lsn() exists only outside recovery; a standby measures from what it received.
SLOTS_SQL = """
SELECT slot_name AS name, slot_type AS type, active, wal_status,
       pg_wal_lsn_diff(
           CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,
           restart_lsn)::bigint AS retained_bytes
FROM pg_replication_slots
ORDER BY slot_name
"""
STANDBY_SELF_SQL = """
SELECT pg_get_wal_replay_pause_state() AS replay_state,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint AS replay_backlog_bytes,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float END AS replay_lag_seconds
"""
SETTINGS_SQL = """
SELECT current_setting('hot_standby_feedback') AS hot_standby_feedback,
       current_setting('max_standby_streaming_delay') AS max_standby_streaming_delay
"""


@dataclass
class Replication:
    role: str  # primary | standby
    standbys: list[dict[str, Any]] = field(default_factory=list)  # seen from a primary
    slots: list[dict[str, Any]] = field(default_factory=list)
    this_standby: dict[str, Any] | None = None  # replay state, backlog: when connected to a standby
    settings: dict[str, str] = field(default_factory=dict)


def read_replication(rows: Any, conn: Any) -> Replication:
    """``rows(conn, sql)`` is health's row reader (JSON-friendly values)."""
    in_recovery = bool(rows(conn, "SELECT pg_is_in_recovery() AS r")[0]["r"])
    report = Replication(role=STANDBY if in_recovery else PRIMARY)
    report.slots = rows(conn, SLOTS_SQL)
    report.settings = rows(conn, SETTINGS_SQL)[0]
    if in_recovery:
        report.this_standby = rows(conn, STANDBY_SELF_SQL)[0]
    else:
        report.standbys = rows(conn, STANDBYS_SQL)
    return report


def judge_replication(rep: Replication, t: Any) -> list[Finding]:
    """Findings for ``rep`` against health's thresholds ``t`` (errors exit 1, warnings 0)."""
    found: list[Finding] = []
    for s in rep.standbys:
        who = f"standby {s['name'] or s['client']}"
        if s["state"] != "streaming":
            found.append(
                Finding(
                    "replication", who, PROBLEM, "streaming", str(s["state"]),
                    "read the standby's server log; check its primary_conninfo and the network",
                )
            )  # fmt: skip
        if not s["sends_feedback"]:
            found.append(
                Finding(
                    "standby_conflicts", who, NOTE, "hot-standby feedback (backend_xmin set)",
                    "no feedback: vacuum here may remove rows its long queries read, and its replay"
                    " then cancels them",
                    "set hot_standby_feedback = on on the standby if it serves long reads",
                )
            )  # fmt: skip
        lag_s, lag_b = s["replay_lag_seconds"], s["replay_lag_bytes"]
        expected = f"replay under {t.replica_lag_seconds} s and {_size(t.replica_lag_bytes)} behind"
        if (lag_s is not None and lag_s >= t.replica_lag_seconds) or (
            lag_b is not None and lag_b >= t.replica_lag_bytes
        ):
            found.append(
                Finding(
                    "replica_lag", who, PROBLEM, expected,
                    f"{_size(lag_b)} of WAL not replayed"
                    + (f", {lag_s:.1f} s behind" if lag_s is not None else "")
                    + ": reads there are stale",
                    "pause heavy writes (backfills, index builds) until it catches up",
                )
            )  # fmt: skip
    for slot in rep.slots:
        retained = slot["retained_bytes"]
        name = f"slot {slot['name']}"
        if not slot["active"]:
            held = f"retains {_size(retained)} of WAL" if retained is not None else "reserves no WAL yet"
            found.append(
                Finding(
                    "inactive_slot", name, PROBLEM if retained is not None else NOTE,
                    "every replication slot in use (an unused one keeps WAL until it is dropped)",
                    f"replication {name} is inactive and {held}",
                    f"if its standby is gone: SELECT pg_drop_replication_slot('{slot['name']}')",
                )
            )  # fmt: skip
        elif retained is not None and retained >= t.slot_retained_bytes:
            found.append(
                Finding(
                    "slot_retained_wal", name, PROBLEM, f"under {_size(t.slot_retained_bytes)} of WAL kept",
                    f"replication {name} retains {_size(retained)} of WAL",
                    "its consumer is falling behind: check that standby's replay",
                )
            )  # fmt: skip
    me = rep.this_standby
    if me is not None:
        if me["replay_state"] != "not paused":
            found.append(
                Finding(
                    "replica_lag", "this standby", PROBLEM, "WAL replay running",
                    f"WAL replay is {me['replay_state']}", "SELECT pg_wal_replay_resume()",
                )
            )  # fmt: skip
        backlog, lag_s = me["replay_backlog_bytes"], me["replay_lag_seconds"]
        if (lag_s is not None and lag_s >= t.replica_lag_seconds) or (
            backlog is not None and backlog >= t.replica_lag_bytes
        ):
            found.append(
                Finding(
                    "replica_lag", "this standby", PROBLEM,
                    f"replay under {t.replica_lag_seconds} s and {_size(t.replica_lag_bytes)} behind",
                    f"{_size(backlog)} of received WAL not replayed ({lag_s or 0:.1f} s behind)",
                    "pause heavy writes on the primary until it catches up",
                )
            )  # fmt: skip
        delay = rep.settings.get("max_standby_streaming_delay", "")
        waits = (
            "waits for them forever, so replay lag grows" if delay == "-1" else f"cancels them after {delay}"
        )
        found.append(
            Finding(
                "standby_conflicts", "this standby", NOTE,
                "revisions on the primary shorter than max_standby_streaming_delay",
                f"max_standby_streaming_delay = {delay}: a revision holding ACCESS EXCLUSIVE on a"
                f" table read here conflicts with those reads, and replay {waits}",
                "keep revisions that lock tables short, or raise the delay for the migration window",
            )
        )  # fmt: skip
        if rep.settings.get("hot_standby_feedback") == "off":
            found.append(
                Finding(
                    "standby_conflicts", "this standby", NOTE, "hot_standby_feedback = on for long reads",
                    "hot_standby_feedback is off: vacuum on the primary may remove rows a long query"
                    " here still reads, and replay then cancels that query",
                    "ALTER SYSTEM SET hot_standby_feedback = on (costs bloat on the primary)",
                )
            )  # fmt: skip
    return found


def _size(size_bytes: int | None) -> str:
    from scripts.db.sizes import human_size

    return human_size(size_bytes) if size_bytes is not None else "an unknown amount"
