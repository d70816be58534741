"""``alp-db partitions ensure|list|detach``: partitions of ``attempts`` (scripts.partitions)."""

from __future__ import annotations

import sys
from typing import Any

import click

from scripts.cli.common import EXIT_PROBLEMS, database_url_option, format_option, handle_errors, render
from scripts.partitions.defaults import (
    DEFAULT_AHEAD,
    DEFAULT_BATCH_ROWS,
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_PAUSE_RATIO,
    DEFAULT_TABLE,
    INTERVALS,
)

table_option = click.option(
    "--table",
    default=DEFAULT_TABLE,
    show_default=True,
    help="The partitioned table (RANGE on a time column).",
)
lock_timeout_option = click.option(
    "--lock-timeout",
    default=None,
    help="Longest wait for a lock before retrying (PostgreSQL duration).",
    show_default=DEFAULT_LOCK_TIMEOUT,
)
_AHEAD_HELP = ", ".join(f"{n} {interval}(s)" for interval, n in DEFAULT_AHEAD.items())


@click.group("partitions")
def partitions() -> None:
    """Create, list and detach the time partitions of attempts."""


@partitions.command("ensure")
@table_option
@click.option("--interval", type=click.Choice(INTERVALS), default=None, help="Default: as existing.")
@click.option(
    "--ahead", type=int, default=None, help=f"Periods past the current one (default {_AHEAD_HELP})."
)
@click.option(
    "--start", default=None, help="First period to cover, YYYY-MM-DD (default: earliest row or today)."
)
@click.option(
    "--batch-rows",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_ROWS,
    show_default=True,
    help="Rows moved out of the default partition per short transaction.",
)
@click.option(
    "--pause-ratio",
    type=click.FloatRange(min=0),
    default=DEFAULT_PAUSE_RATIO,
    show_default=True,
    help="After each batch, wait this many times as long as it took (0: no pause), so the"
    " platform's commits do not queue behind the move's WAL.",
)
@lock_timeout_option
@database_url_option
@format_option
@handle_errors
def ensure_cmd(
    table: str,
    interval: str | None,
    ahead: int | None,
    start: str | None,
    batch_rows: int,
    pause_ratio: float,
    lock_timeout: str | None,
    database_url: str | None,
    fmt: str,
) -> None:
    """Create every missing partition; rows already in the default partition move into them."""
    from scripts import partitions as lib
    from scripts.db.target import session

    def retrying(attempt: int) -> None:
        click.echo(f"alp-db: lock wait timed out; retrying ({attempt})", err=True)

    def progress(partition: str, moved: int) -> None:
        click.echo(f"alp-db: {partition}: moved {moved} row(s) out of the default partition", err=True)

    with session(database_url) as conn:
        result = lib.ensure(
            conn,
            table,
            interval=interval,
            ahead=ahead,
            start=start,
            lock_timeout=lock_timeout,
            batch_rows=batch_rows,
            pause_ratio=pause_ratio,
            on_retry=retrying,
            on_batch=progress,
        )
    if fmt == "json":
        render(result.as_json(), fmt)
        return
    if not result.created:
        click.echo(
            f"nothing to create: {result.table} has a partition for every {result.interval} from"
            f" {result.checked_from:%Y-%m-%d} to {result.checked_to:%Y-%m-%d}"
        )
    for period in result.created:
        moved = result.moved_rows.get(period.name, 0)
        note = f" (moved {moved} row(s) from the default partition)" if moved else ""
        click.echo(f"created {period.describe()}{note}")


@partitions.command("list")
@table_option
@database_url_option
@format_option
@handle_errors
def list_cmd(table: str, database_url: str | None, fmt: str) -> None:
    """Partitions with bounds, estimated rows and size; exit 1 if the default partition holds rows."""
    from scripts import partitions as lib
    from scripts.db.target import session

    with session(database_url) as conn:
        listing = lib.list_partitions(conn, table)
    if fmt == "json":
        render(listing.as_json(), fmt)
    else:
        rows: list[dict[str, Any]] = [p.as_row() for p in listing.partitions]
        render(
            rows,
            fmt,
            columns=["name", "from", "to", "estimated_rows", "size"],
            title=f"{listing.table} (bounds in UTC)",
        )
    if listing.warning:
        click.echo(f"alp-db: warning: {listing.warning}", err=True)
        sys.exit(EXIT_PROBLEMS)


@partitions.command("detach")
@table_option
@click.option("--older-than", required=True, help="Detach partitions wholly before this date (YYYY-MM-DD).")
@click.option("--drop", is_flag=True, help="Drop the detached partitions afterwards.")
@click.option("--dry-run", is_flag=True, help="Print the statements; change nothing.")
@lock_timeout_option
@database_url_option
@format_option
@handle_errors
def detach_cmd(
    table: str,
    older_than: str,
    drop: bool,
    dry_run: bool,
    lock_timeout: str | None,
    database_url: str | None,
    fmt: str,
) -> None:
    """Detach (and with --drop, drop) old partitions; never the default one."""
    from scripts import partitions as lib
    from scripts.db.target import session

    with session(database_url) as conn:
        plan = lib.plan_detach(conn, table, older_than, drop=drop)
        if not dry_run:
            lib.apply_detach(conn, plan, lock_timeout=lock_timeout)
    if fmt == "json":
        render({**plan.as_json(), "dry_run": dry_run}, fmt)
        return
    if not plan.partitions:
        click.echo(f"nothing to detach: no partition of {plan.table} ends on or before {plan.older_than}")
        return
    if plan.why_not_concurrently:
        click.echo(f"alp-db: not CONCURRENTLY: {plan.why_not_concurrently}", err=True)
    verb = "would run" if dry_run else "ran"
    for statement in plan.statements:
        click.echo(f"{verb}: {statement};")
