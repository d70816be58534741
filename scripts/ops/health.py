"""Database health: the monitoring views of revision 0004, judged against thresholds.

Reads ``system_health``, ``table_sizes``, ``index_usage``, ``connection_stats`` and
``slow_queries``, plus ``pg_stat_user_tables`` for dead tuples per table (the database-wide
ratio in ``system_health`` hides one bloated table among healthy ones), and replication
(scripts/ops/replication.py: standbys, lag, slots, conflict settings). Each figure past its
threshold becomes a Finding (scripts/ops/health_findings.py): an ``error`` makes the report
unhealthy (exit 1 for CI/cron), a ``warning`` is listed only — the rule of every report.
Cumulative statistics are updated asynchronously (PostgreSQL docs,
"The Cumulative Statistics System"), so figures may lag the last second of activity.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import asdict, dataclass, field
from typing import Any

from scripts.errors import HealthCheckFailed
from scripts.findings import Finding, errors
from scripts.ops.replication import (
    REPLICA_LAG_BYTES_MAX,
    REPLICA_LAG_SECONDS_MAX,
    SLOT_RETAINED_BYTES_MAX,
    Replication,
    read_replication,
)

# -- thresholds: named defaults, each overridable ------------------------------------------

# Below this share of buffer hits, the working set no longer fits in shared_buffers.
CACHE_HIT_RATIO_MIN_PCT = 99.0
# ...judged only once the database has done this many block reads+hits (a cold start is not a problem).
CACHE_MIN_BLOCKS = 10_000
# A table is bloated when this share of its tuples is dead — autovacuum's own default trigger
# is 20% (autovacuum_vacuum_scale_factor), so past it autovacuum is not keeping up —
DEAD_TUPLE_RATIO_MAX_PCT = 20.0
# ...and at least this many tuples are dead (small tables churn harmlessly).
DEAD_TUPLES_MIN = 1_000
# Transaction-id age of the database: autovacuum forces freezing at 200M
# (autovacuum_freeze_max_age); 1 billion is ~half-way to wraparound (docs 24.1.5).
XID_AGE_MAX = 1_000_000_000
# Share of max_connections in use before new clients risk being refused.
CONNECTION_USAGE_MAX_PCT = 80.0
# A statement (or an open transaction) running longer than this is flagged.
LONG_QUERY_SECONDS = 300.0
# Sessions idle in a transaction longer than this hold locks and block vacuum.
IDLE_IN_TRANSACTION_SECONDS = 60.0
# Never-scanned, non-unique indexes at least this big are listed (info: statistics may be young).
UNUSED_INDEX_MIN_BYTES = 1024 * 1024
TOP_TABLES = 10

MONITORING_VIEWS = ("system_health", "table_sizes", "index_usage", "connection_stats", "slow_queries")


@dataclass(frozen=True)
class Thresholds:
    cache_hit_ratio_min_pct: float = CACHE_HIT_RATIO_MIN_PCT
    cache_min_blocks: int = CACHE_MIN_BLOCKS
    dead_tuple_ratio_max_pct: float = DEAD_TUPLE_RATIO_MAX_PCT
    dead_tuples_min: int = DEAD_TUPLES_MIN
    xid_age_max: int = XID_AGE_MAX
    connection_usage_max_pct: float = CONNECTION_USAGE_MAX_PCT
    long_query_seconds: float = LONG_QUERY_SECONDS
    idle_in_transaction_seconds: float = IDLE_IN_TRANSACTION_SECONDS
    unused_index_min_bytes: int = UNUSED_INDEX_MIN_BYTES
    replica_lag_seconds: float = REPLICA_LAG_SECONDS_MAX
    replica_lag_bytes: int = REPLICA_LAG_BYTES_MAX
    slot_retained_bytes: int = SLOT_RETAINED_BYTES_MAX


@dataclass
class HealthReport:
    database: str
    database_size: str
    database_bytes: int
    system: dict[str, Any]
    biggest_tables: list[dict[str, Any]]
    dead_tuples: list[dict[str, Any]]
    unused_indexes: list[dict[str, Any]]
    connections: list[dict[str, Any]]
    long_queries: list[dict[str, Any]]
    thresholds: Thresholds
    replication: Replication | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return errors(self.findings)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["findings"] = [f.as_json() for f in self.findings]
        data["healthy"] = self.healthy
        return data


# Per-table dead tuples, with what explains them: autovacuum switched off (any boolean
# spelling the server accepts is kept as written in reloptions), last (auto)vacuum.
DEAD_TUPLES_SQL = """
SELECT s.schemaname AS schema_name,
       s.relname AS table_name,
       s.n_live_tup AS live_tuples,
       s.n_dead_tup AS dead_tuples,
       round(100.0 * s.n_dead_tup / nullif(s.n_live_tup + s.n_dead_tup, 0), 2) AS dead_tuple_ratio,
       EXISTS (SELECT 1 FROM unnest(c.reloptions) o
               WHERE o ~* '^autovacuum_enabled=(false|off|no|f|n|0)$') AS autovacuum_disabled,
       greatest(s.last_vacuum, s.last_autovacuum) AS last_vacuum
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
WHERE s.n_dead_tup > 0
ORDER BY s.n_dead_tup DESC, s.relname
"""


# connection_stats as revision 0004 defines it, with longest_in_state clamped at zero: now()
# is the start of *our* transaction, so a session whose state changed since then would show
# a negative age (-00:00:00.000003). The view itself belongs to a shipped revision.
CONNECTIONS_SQL = """
SELECT database_name, state, connections, waiting_on_locks,
       greatest(longest_in_state, interval '0') AS longest_in_state, max_connections
FROM connection_stats
"""


SCHEMA_ACCESS_SQL = """
SELECT coalesce(current_schema(), 'public') AS name, current_user AS role,
       has_schema_privilege(coalesce(current_schema(), 'public'), 'USAGE') AS usable
"""
VIEWS_SQL = """
SELECT array_agg(c.relname::text) AS names
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema AND c.relname = ANY(:names)
"""


def _plain(value: Any) -> Any:
    """Database values as JSON-friendly Python: numbers, strings, seconds for intervals."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.timedelta):
        return round(value.total_seconds(), 3)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _rows(conn: Any, statement: str, **params: Any) -> list[dict[str, Any]]:
    from sqlalchemy import text

    return [
        {k: _plain(v) for k, v in row.items()} for row in conn.execute(text(statement), params).mappings()
    ]


def check_health(
    database_url: Any = None, thresholds: Thresholds | None = None, *, top: int = TOP_TABLES
) -> HealthReport:
    """Read the monitoring views and judge them; raise HealthCheckFailed if they are missing."""
    from sqlalchemy.exc import DBAPIError

    from scripts.db.engine import first_line
    from scripts.db.target import resolve_url, session

    limits = thresholds or Thresholds()
    url = resolve_url(database_url)
    try:
        with session(url) as conn:
            report, blocks = _read(conn, limits, top)
    except DBAPIError as exc:
        raise HealthCheckFailed(f"could not read the monitoring views: {first_line(exc, url)}") from None
    from scripts.ops.health_findings import judge

    report.findings = judge(report, limits, blocks=blocks)
    return report


def _read(conn: Any, limits: Thresholds, top: int) -> tuple[HealthReport, int]:
    # Looked up in the catalogs (readable by every role), not by to_regclass: without USAGE on
    # the schema a role sees no views at all, and must not be told to migrate a migrated database.
    schema = _rows(conn, SCHEMA_ACCESS_SQL)[0]
    if not schema["usable"]:
        raise HealthCheckFailed(
            f"permission denied for schema {schema['name']}:"
            f" role {schema['role']!r} cannot read the monitoring views",
            f"GRANT USAGE ON SCHEMA {schema['name']} and SELECT on its views to it"
            " (or grant it pg_read_all_data)",
        )
    present = set(
        _rows(conn, VIEWS_SQL, names=list(MONITORING_VIEWS), schema=schema["name"])[0]["names"] or []
    )
    missing = [v for v in MONITORING_VIEWS if v not in present]
    if missing:
        raise HealthCheckFailed(
            f"the monitoring views are missing from {conn.engine.url.database!r}: {', '.join(missing)}",
            "migrate the database first: alp-db migrate",
        )
    system = _rows(conn, "SELECT * FROM system_health")[0]
    report = HealthReport(
        database=system["database_name"],
        database_size=system["database_size"],
        database_bytes=system["database_bytes"],
        system=system,
        biggest_tables=_rows(conn, "SELECT * FROM table_sizes LIMIT :n", n=top),
        dead_tuples=_rows(conn, DEAD_TUPLES_SQL),
        unused_indexes=_rows(
            conn,
            "SELECT * FROM index_usage WHERE idx_scan = 0 AND NOT is_unique AND NOT is_primary"
            " ORDER BY index_bytes DESC, index_name",
        ),
        connections=_rows(conn, CONNECTIONS_SQL),
        long_queries=_rows(conn, "SELECT * FROM slow_queries"),
        thresholds=limits,
        replication=read_replication(_rows, conn),
    )
    blocks = _rows(
        conn,
        "SELECT blks_hit + blks_read AS blocks FROM pg_stat_database WHERE datname = current_database()",
    )[0]["blocks"]
    return report, int(blocks or 0)
