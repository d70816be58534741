"""``alp-db data-migration run|status|forget``: batched data migrations and their checkpoints."""

from __future__ import annotations

import click

from scripts.cli.batch_update import batch_update
from scripts.cli.common import database_url_option, format_option, handle_errors, render

# the table view; --format json has every field (started_at, rows_walked, ...)
TABLE_COLUMNS = ["name", "table", "state", "why", "rows_done", "batches", "last_key", "updated_at"]


@click.group("data-migration")
def data_migration() -> None:
    """Batched data migrations: run, list their checkpoints, forget one."""


data_migration.add_command(batch_update, "run")


@data_migration.command("status")
@format_option
@database_url_option
@handle_errors
def status(fmt: str, database_url: str | None) -> None:
    """List data migrations with their checkpoints: rows done, last key, and their state:
    running, paused (and why: a lagging standby, WAL kept by slots, autovacuum), stopped
    (the same command resumes it) or finished."""
    from scripts import backfill

    rows = [s.as_row() for s in backfill.status(database_url)]
    if fmt == "json":
        render(rows, fmt)
        return
    if not rows:
        click.echo("no data migrations recorded")
        return
    for row in rows:  # a person reads seconds, not microseconds
        for stamp in ("started_at", "updated_at", "finished_at"):
            row[stamp] = row[stamp] and row[stamp].strftime("%Y-%m-%d %H:%M:%S")
    render(rows, fmt, columns=TABLE_COLUMNS, title="data migrations")


@data_migration.command("forget")
@click.argument("name")
@database_url_option
@handle_errors
def forget(name: str, database_url: str | None) -> None:
    """Delete a checkpoint, so that a migration of that name runs again from the start."""
    from scripts import backfill
    from scripts.errors import DataMigrationError

    if not backfill.forget(database_url, name):
        raise DataMigrationError(f"no data migration named {name!r}", "see `alp-db data-migration status`")
    click.echo(f"forgot data migration {name!r}")
