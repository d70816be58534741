"""``alp-db batch-update``: one batched, resumable UPDATE."""

from __future__ import annotations

import click

from scripts.backfill.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_SLEEP_S,
)
from scripts.cli.common import database_url_option, format_option, handle_errors, render


@click.command("batch-update")
@click.argument("table")
@click.option("--set", "set_", required=True, metavar="EXPR", help="SQL assignments, e.g. 'x = x * 1.1'.")
@click.option("--where", metavar="EXPR", help="SQL condition; rows not matching are left alone.")
@click.option("--key", metavar="COL[,COL]", help="Columns to walk by; default: the primary key.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Keys per batch (one commit each), sized for batches well under 150 ms.",
)
@click.option(
    "--sleep",
    type=click.FloatRange(min=0),
    default=DEFAULT_SLEEP_S,
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
    help="Stop cleanly at a checkpoint after this long (checked after each batch).",
)
@click.option(
    "--lock-timeout",
    default=DEFAULT_LOCK_TIMEOUT,
    show_default=True,
    help="Per batch; a batch that waits longer for a row lock is retried.",
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_RETRIES,
    show_default=True,
    help="Retries of one batch.",
)
@format_option
@database_url_option
@handle_errors
def batch_update(
    table: str,
    set_: str,
    where: str | None,
    key: str | None,
    batch_size: int,
    sleep: float,
    name: str | None,
    dry_run: bool,
    max_runtime: float | None,
    lock_timeout: str,
    max_retries: int,
    fmt: str,
    database_url: str | None,
) -> None:
    """UPDATE TABLE SET ... WHERE ... in key-ordered batches, one commit each, resumable.

    Every matching row is updated exactly once, even when SET changes what WHERE reads. A
    killed or stopped run resumes after its last committed batch when run again with the
    same --name (the default name is the same for the same command).
    """
    import sys

    from scripts import backfill
    from scripts.backfill import progress as backfill_progress

    options = backfill.BatchOptions(
        batch_size=batch_size, sleep=sleep, lock_timeout=lock_timeout, max_retries=max_retries
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
