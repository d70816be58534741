"""The ``alp-db`` command line: parse, call one library function, render, map to an exit code.

Each area's commands live in their own module here; heavy modules (SQLAlchemy, Alembic)
are imported inside the commands, so ``alp-db --help`` stays fast.
"""

from __future__ import annotations

import click

from scripts.cli import backfill, devdb, migrate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def main(debug: bool) -> None:
    """alp-db: the schema manager for the adaptive learning platform's PostgreSQL database."""


main.add_command(migrate.migrate)
main.add_command(devdb.dev_db)
main.add_command(backfill.batch_update)
main.add_command(backfill.data_migration)
