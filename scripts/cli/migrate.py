"""``alp-db migrate``."""

from __future__ import annotations

import click

from scripts.cli.common import database_url_option, handle_errors


@click.command()
@database_url_option
@click.option("--to", "target", default="head", show_default=True, help="Target revision.")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it (offline mode).")
@handle_errors
def migrate(database_url: str | None, target: str, sql: bool) -> None:
    """Apply pending migrations (like `alembic upgrade head`)."""
    from scripts import migrations

    migrations.upgrade(database_url, target, sql=sql)
