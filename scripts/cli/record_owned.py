"""``alp-db record-owned``: print owned_objects.py for a database at head."""

from __future__ import annotations

import click

from scripts.cli.common import database_url_option, handle_errors


@click.command("record-owned")
@database_url_option
@handle_errors
def record_owned(database_url: str | None) -> None:
    """Print scripts/schema_diff/owned_objects.py for the database, which must be at head.

    Run it after a revision adds or changes a trigger, function, view or default partition:
    alp-db record-owned > scripts/schema_diff/owned_objects.py && ruff format scripts/schema_diff
    """
    from scripts.schema_diff.record import record_owned as record

    click.echo(record(database_url), nl=False)
