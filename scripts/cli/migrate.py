"""``alp-db migrate`` and ``alp-db test-connection``."""

from __future__ import annotations

import sys

import click

from scripts.cli.common import (
    database_url_option,
    handle_errors,
    runtime_options,
)


@click.command()
@database_url_option
@click.option("--to", "target", default="head", show_default=True, help="Target revision.")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it (offline mode; no database).")
@click.option("--backup", is_flag=True, help="Take a pg_dump backup first (see `alp-db backup`).")
@runtime_options
@handle_errors
def migrate(database_url: str | None, target: str, sql: bool, backup: bool, **overrides: str | None) -> None:
    """Apply pending migrations (like `alembic upgrade head`)."""
    from scripts.migrations import api as migrations

    if sql:
        if backup:
            raise click.UsageError("--backup needs a database; it cannot be combined with --sql")
        migrations.upgrade(database_url, target, sql=True, output=sys.stdout, overrides=overrides)
        return
    if backup:
        from scripts.ops.backup import create_backup

        made = create_backup(database_url)
        from scripts.db.sizes import human_size

        click.echo(f"backup written: {made.path} ({human_size(made.size)})", err=True)
    result = migrations.migrate(database_url, target, overrides=overrides)
    if result.applied:
        click.echo(
            f"applied {len(result.applied)} revision(s): {', '.join(result.applied)}; now at {result.after}"
        )
    else:
        click.echo(f"nothing to do: database already at {result.after or 'base'}")
