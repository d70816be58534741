"""``alp-db batch-update``: one batched, resumable UPDATE."""

from __future__ import annotations

import click

from scripts.backfill import defaults
from scripts.cli.common import database_url_option, format_option, handle_errors, render

MB = 1024**2


@click.command("batch-update")
@click.argument("table")
@click.option("--set", "set_", required=True, metavar="EXPR", help="SQL assignments, e.g. 'x = x * 1.1'.")
@click.option("--where", metavar="EXPR", help="SQL condition; rows not matching are left alone.")
@click.option("--key", metavar="COL[,COL]", help="Columns to walk by; default: the primary key.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Keys per batch (one commit each), fixed. Default: adapted to --target-batch-ms,"
    f" starting at {defaults.DEFAULT_BATCH_SIZE}.",
)
@click.option(
    "--target-batch-ms",
    type=click.FloatRange(min=1),
    default=defaults.DEFAULT_TARGET_BATCH_MS,
    show_default=True,
    help="Without --batch-size: the batch duration the size adapts to.",
)
@click.option(
    "--min-batch-size",
    type=click.IntRange(min=1),
    default=defaults.DEFAULT_MIN_BATCH_SIZE,
    show_default=True,
    help="Without --batch-size: the smallest size it adapts to.",
)
@click.option(
    "--max-batch-size",
    type=click.IntRange(min=1),
    default=defaults.DEFAULT_MAX_BATCH_SIZE,
    show_default=True,
    help="Without --batch-size: the largest size it adapts to.",
)
@click.option(
    "--sleep",
    type=click.FloatRange(min=0),
    default=defaults.DEFAULT_SLEEP_S,
    show_default=True,
    help="Pause between batches, seconds.",
)
@click.option("--name", help="Checkpoint name; default: derived from table, SET, WHERE and key.")
@click.option("--dry-run", is_flag=True, help="Count the rows that would be updated; change nothing.")
@click.option(
    "--max-runtime",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Stop cleanly at a checkpoint after this long (checked before and after each batch).",
)
@click.option(
    "--lock-timeout",
    default=defaults.DEFAULT_LOCK_TIMEOUT,
    show_default=True,
    help="Per batch; a batch that waits longer for a row lock is retried.",
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=defaults.DEFAULT_MAX_RETRIES,
    show_default=True,
    help="Retries of one batch.",
)
@click.option(
    "--max-replay-lag",
    type=click.FloatRange(min=0),
    default=defaults.DEFAULT_MAX_REPLAY_LAG_S,
    show_default=True,
    metavar="SECONDS",
    help="Pause while a standby's replay lag is longer.",
)
@click.option(
    "--max-replay-lag-mb",
    type=click.FloatRange(min=0),
    default=defaults.DEFAULT_MAX_REPLAY_LAG_BYTES / MB,
    show_default=True,
    help="Pause while a standby has more WAL than this left to replay.",
)
@click.option(
    "--max-slot-wal-mb",
    type=click.FloatRange(min=0),
    default=defaults.DEFAULT_MAX_SLOT_WAL_BYTES / MB,
    show_default=True,
    help="Pause while replication slots keep more WAL than this on the primary.",
)
@click.option(
    "--pause-on-autovacuum",
    type=click.Choice(["wraparound", "any", "never"]),
    default="wraparound",
    show_default=True,
    help="Pause while autovacuum works on the table: only an anti-wraparound one, any, or never.",
)
@click.option("--no-health-checks", is_flag=True, help="Never pause for replicas or autovacuum.")
@click.option(
    "--pause-poll",
    type=click.FloatRange(min=0),
    default=defaults.DEFAULT_PAUSE_POLL_S,
    show_default=True,
    metavar="SECONDS",
    help="While paused, look at the database's health this often.",
)
@click.option(
    "--health-interval",
    type=click.FloatRange(min=0),
    default=defaults.DEFAULT_HEALTH_CHECK_INTERVAL_S,
    show_default=True,
    metavar="SECONDS",
    help="While healthy, look at the database's health at most this often (0: before every batch).",
)
@format_option
@database_url_option
@handle_errors
def batch_update(
    table: str,
    set_: str,
    where: str | None,
    key: str | None,
    batch_size: int | None,
    target_batch_ms: float,
    min_batch_size: int,
    max_batch_size: int,
    sleep: float,
    name: str | None,
    dry_run: bool,
    max_runtime: float | None,
    lock_timeout: str,
    max_retries: int,
    max_replay_lag: float,
    max_replay_lag_mb: float,
    max_slot_wal_mb: float,
    pause_on_autovacuum: str,
    no_health_checks: bool,
    pause_poll: float,
    health_interval: float,
    fmt: str,
    database_url: str | None,
) -> None:
    """UPDATE TABLE SET ... WHERE ... in key-ordered batches, one commit each, resumable.

    Every matching row is updated exactly once, even when SET changes what WHERE reads. A
    killed or stopped run resumes after its last committed batch when run again with the
    same --name (the default name is the same for the same command). Before each batch it
    pauses while a standby lags, replication slots hold too much WAL, or an anti-wraparound
    autovacuum works on the table.
    """
    import sys

    from scripts import backfill
    from scripts.backfill import progress as backfill_progress
    from scripts.backfill.health import HealthLimits

    options = backfill.BatchOptions(
        batch_size=batch_size,
        target_batch_ms=target_batch_ms,
        min_batch_size=min_batch_size,
        max_batch_size=max_batch_size,
        sleep=sleep,
        lock_timeout=lock_timeout,
        max_retries=max_retries,
        health=HealthLimits(
            enabled=not no_health_checks,
            max_replay_lag_s=max_replay_lag,
            max_replay_lag_bytes=int(max_replay_lag_mb * MB),
            max_slot_wal_bytes=int(max_slot_wal_mb * MB),
            pause_on_autovacuum=pause_on_autovacuum,
            poll_s=pause_poll,
            check_interval_s=health_interval,
        ),
    )
    result = backfill.batch_update(
        database_url,
        table=table,
        set_=set_,
        where=where,
        key=key,
        name=name,
        dry_run=dry_run,
        max_runtime=max_runtime,
        options=options,
        reporter=backfill_progress.for_stream(sys.stderr),
    )
    data = result.as_dict()
    if fmt == "json":
        render(data, fmt)
    else:
        rows = [
            {"field": k, "value": ", ".join(v) if isinstance(v, (tuple, list)) else v}
            for k, v in data.items()
        ]
        render(rows, fmt, title=result.summary())
