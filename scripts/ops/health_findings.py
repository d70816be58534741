"""health's judgement: each figure past its threshold becomes a Finding (scripts/findings.py).

One rule for every report (README, "Commands"): an ``error`` is a problem to fix and makes
the run exit 1; a ``warning`` is worth knowing (an unused index, a standby setting) and
exits 0. Each finding says EXPECTED (the threshold), ACTUAL (the figure) and HOW TO FIX.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scripts.db.sizes import human_size
from scripts.findings import Finding, Severity
from scripts.ops.replication import judge_replication

if TYPE_CHECKING:
    from scripts.ops.health import HealthReport, Thresholds

PROBLEM, NOTE = Severity.ERROR, Severity.WARNING


def judge(report: HealthReport, t: Thresholds, *, blocks: int) -> list[Finding]:
    """Every figure past its threshold, as a Finding."""
    found: list[Finding] = []
    system = report.system
    ratio = system.get("cache_hit_ratio")
    if ratio is not None and blocks >= t.cache_min_blocks and ratio < t.cache_hit_ratio_min_pct:
        found.append(
            Finding(
                "cache_hit_ratio", report.database, PROBLEM,
                f"cache hit ratio of at least {t.cache_hit_ratio_min_pct}%", f"{ratio}%",
                "the working set no longer fits in memory: raise shared_buffers",
            )
        )  # fmt: skip
    for row in report.dead_tuples:
        dead, pct = row["dead_tuples"], row["dead_tuple_ratio"] or 0.0
        if dead >= t.dead_tuples_min and pct >= t.dead_tuple_ratio_max_pct:
            name = f"{row['schema_name']}.{row['table_name']}"
            off = bool(row["autovacuum_disabled"])
            found.append(
                Finding(
                    "dead_tuples", name, PROBLEM,
                    f"under {t.dead_tuple_ratio_max_pct}% dead tuples (or under {t.dead_tuples_min})",
                    f"{name} is bloated: {dead} dead tuples, {pct}% of the table"
                    + (" (autovacuum is disabled on it)" if off else ""),
                    f"run VACUUM {name}" + ("; re-enable autovacuum on it" if off else ""),
                )
            )  # fmt: skip
    xid_age = system.get("xid_age")
    if xid_age is not None and xid_age >= t.xid_age_max:
        found.append(
            Finding(
                "xid_age", report.database, PROBLEM,
                f"transaction-id age under {t.xid_age_max}", f"transaction-id age {xid_age}",
                "run VACUUM (FREEZE) on the oldest tables before wraparound",
            )
        )  # fmt: skip
    max_conn = system.get("max_connections") or 0
    used = 100.0 * (system.get("connections") or 0) / max_conn if max_conn else 0.0
    if used >= t.connection_usage_max_pct:
        found.append(
            Finding(
                "connections", report.database, PROBLEM,
                f"under {t.connection_usage_max_pct}% of max_connections in use",
                f"{system['connections']} of {max_conn} connections in use ({used:.0f}%)",
                "put a connection pooler (PgBouncer) in front, or raise max_connections",
            )
        )  # fmt: skip
    for row in report.connections:
        longest = row["longest_in_state"] or 0
        if row["state"].startswith("idle in transaction") and longest >= t.idle_in_transaction_seconds:
            found.append(
                Finding(
                    "idle_in_transaction", str(row["database_name"]), PROBLEM,
                    f"no session idle in a transaction for {t.idle_in_transaction_seconds} s or more",
                    f"{row['connections']} session(s) {row['state']} for up to {longest} s",
                    "they hold locks and keep vacuum from cleaning up: end them (pg_terminate_backend)"
                    " and fix the client that leaves transactions open",
                )
            )  # fmt: skip
    for row in report.long_queries:
        seconds = (row["duration_ms"] or 0) / 1000
        if seconds >= t.long_query_seconds:
            found.append(
                Finding(
                    "long_query", f"pid {row['pid']}", PROBLEM,
                    f"no statement running {t.long_query_seconds} s or more",
                    f"pid {row['pid']} ({row['state']}) has run {seconds:.0f} s: {str(row['query'])[:80]}",
                    f"if it should not run that long: SELECT pg_cancel_backend({row['pid']})",
                )
            )  # fmt: skip
    for row in report.unused_indexes:
        if row["index_bytes"] >= t.unused_index_min_bytes:
            name = f"{row['schema_name']}.{row['index_name']}"
            found.append(
                Finding(
                    "unused_index", name, NOTE,
                    "every index scanned at least once since statistics were reset",
                    f"{name} on {row['table_name']} ({human_size(row['index_bytes'])}) was never scanned",
                    "drop it if no query needs it; statistics may be young, and standbys count their own",
                )
            )  # fmt: skip
    if report.replication is not None:
        found.extend(judge_replication(report.replication, t))
    return found
