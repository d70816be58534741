"""``alp-db health``: the monitoring views, judged; exit 0 healthy, 1 problems, 2 could not check."""

from __future__ import annotations

import sys

import click

from scripts.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    database_url_option,
    format_option,
    handle_errors,
    render,
)
from scripts.db.sizes import human_size

# Defaults mirror scripts.ops.health's named constants (not imported here, to keep --help fast).
DEFAULTS = {
    "cache_hit_min": 99.0,
    "dead_ratio_max": 20.0,
    "dead_tuples_min": 1_000,
    "xid_age_max": 1_000_000_000,
    "connections_max": 80.0,
    "long_query_seconds": 300.0,
    "idle_in_transaction_seconds": 60.0,
    "replica_lag_seconds": 60.0,
    "replica_lag_bytes": 1_000_000_000,
    "slot_retained_bytes": 1_000_000_000,
}


@click.command()
@database_url_option
@format_option
@click.option(
    "--top", type=click.IntRange(min=1), default=10, show_default=True, help="Biggest tables to list."
)
@click.option("--cache-hit-min", type=float, default=DEFAULTS["cache_hit_min"], show_default=True,
              help="Flag a cache hit ratio (%) below this.")  # fmt: skip
@click.option("--dead-ratio-max", type=float, default=DEFAULTS["dead_ratio_max"], show_default=True,
              help="Flag a table whose dead tuples (%) reach this...")  # fmt: skip
@click.option("--dead-tuples-min", type=int, default=DEFAULTS["dead_tuples_min"], show_default=True,
              help="...when it has at least this many dead tuples.")  # fmt: skip
@click.option("--xid-age-max", type=int, default=DEFAULTS["xid_age_max"], show_default=True,
              help="Flag a transaction-id age at or above this.")  # fmt: skip
@click.option("--connections-max", type=float, default=DEFAULTS["connections_max"], show_default=True,
              help="Flag connection use (% of max_connections) at or above this.")  # fmt: skip
@click.option("--long-query-seconds", type=float, default=DEFAULTS["long_query_seconds"], show_default=True,
              help="Flag statements running at least this long.")  # fmt: skip
@click.option("--idle-in-transaction-seconds", type=float, default=DEFAULTS["idle_in_transaction_seconds"],
              show_default=True, help="Flag sessions idle in a transaction at least this long.")  # fmt: skip
@click.option("--replica-lag-seconds", type=float, default=DEFAULTS["replica_lag_seconds"], show_default=True,
              help="Flag a standby whose replay lags this long.")  # fmt: skip
@click.option("--replica-lag-bytes", type=int, default=DEFAULTS["replica_lag_bytes"], show_default=True,
              help="Flag a standby this many bytes of WAL behind in replay.")  # fmt: skip
@click.option("--slot-retained-bytes", type=int, default=DEFAULTS["slot_retained_bytes"], show_default=True,
              help="Flag an active slot retaining this much WAL (inactive ones always).")  # fmt: skip
@handle_errors
def health(
    database_url: str | None,
    fmt: str,
    top: int,
    cache_hit_min: float,
    dead_ratio_max: float,
    dead_tuples_min: int,
    xid_age_max: int,
    connections_max: float,
    long_query_seconds: float,
    idle_in_transaction_seconds: float,
    replica_lag_seconds: float,
    replica_lag_bytes: int,
    slot_retained_bytes: int,
) -> None:
    """Database size, biggest tables, bloat, unused indexes, connections, long queries, replication."""
    from scripts.ops import health as checks

    thresholds = checks.Thresholds(
        cache_hit_ratio_min_pct=cache_hit_min,
        dead_tuple_ratio_max_pct=dead_ratio_max,
        dead_tuples_min=dead_tuples_min,
        xid_age_max=xid_age_max,
        connection_usage_max_pct=connections_max,
        long_query_seconds=long_query_seconds,
        idle_in_transaction_seconds=idle_in_transaction_seconds,
        replica_lag_seconds=replica_lag_seconds,
        replica_lag_bytes=replica_lag_bytes,
        slot_retained_bytes=slot_retained_bytes,
    )
    report = checks.check_health(database_url, thresholds, top=top)
    if fmt == "json":
        render(report.as_json(), fmt)
    else:
        s = report.system
        summary = {
            "database": report.database,
            "size": human_size(report.database_bytes),
            "connections": f"{s['connections']} / {s['max_connections']}",
            "cache hit %": s["cache_hit_ratio"],
            "dead tuples %": s["dead_tuple_ratio"],
            "xid age": s["xid_age"],
            "deadlocks": s["deadlocks"],
        }
        render(summary, fmt, title="system health")
        tables = [{**row, "total_size": human_size(row["total_bytes"])} for row in report.biggest_tables]
        render(tables, fmt, title="biggest tables",
               columns=["table_name", "partitions", "row_estimate", "total_size"])  # fmt: skip
        columns = ["database_name", "state", "connections", "waiting_on_locks", "longest_in_state"]
        render(report.connections, fmt, title="connections", columns=columns)
        rep = report.replication
        if rep is not None and rep.standbys:
            render(rep.standbys, fmt, title=f"standbys of this {rep.role}",
                   columns=["name", "client", "state", "sent_lag_bytes", "replay_lag_bytes",
                            "replay_lag_seconds", "sends_feedback"])  # fmt: skip
        if rep is not None and rep.this_standby is not None:
            render({**rep.this_standby, **rep.settings}, fmt, title="this server is a standby")
        if rep is not None and rep.slots:
            render(rep.slots, fmt, title="replication slots",
                   columns=["name", "type", "active", "wal_status", "retained_bytes"])  # fmt: skip
        from scripts.findings import render_finding

        for finding in report.findings:  # EXPECTED / ACTUAL / HOW TO FIX, as every report prints them
            click.echo(render_finding(finding))
        verdict = "healthy" if report.healthy else f"{len(report.problems)} problem(s) flagged"
        click.echo(verdict)
    sys.exit(EXIT_OK if report.healthy else EXIT_PROBLEMS)
