"""The ``alp-db`` command line: parse, call one library function, render, map to an exit code.

Each area's commands live in their own module here, imported only when that command runs
(``--help`` imports them all to list them); heavy modules (SQLAlchemy, Alembic) are
imported inside the commands, so start-up stays fast.
"""

from __future__ import annotations

import importlib

import click

from scripts import gc_pause

# command name -> "module:attribute" of its click command
COMMANDS = {
    "backup": "scripts.cli.backup:backup",
    "batch-update": "scripts.cli.batch_update:batch_update",
    "data-migration": "scripts.cli.data_migration:data_migration",
    "dev-db": "scripts.cli.dev_db:dev_db",
    "health": "scripts.cli.health:health",
    "migrate": "scripts.cli.migrate:migrate",
    "migration": "scripts.cli.migration:migration",
    "partitions": "scripts.cli.partitions:partitions",
    "record-owned": "scripts.cli.record_owned:record_owned",
    "seed": "scripts.cli.seed:seed",
    "test-migrations": "scripts.cli.test_migrations:test_migrations",
    "test-connection": "scripts.cli.test_connection:test_connection",
    "validate-migrations": "scripts.cli.validate_migrations:validate_migrations",
    "validate-schema": "scripts.cli.validate_schema:validate_schema",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's "lazily loading" pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def invoke(self, ctx: click.Context) -> object:
        # The command's imports (SQLAlchemy, Alembic: half a second of allocation and no
        # garbage) run with the cyclic collector paused until it makes its first engine.
        with gc_pause.until_connecting():
            return super().invoke(ctx)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def main(debug: bool) -> None:
    """alp-db: the schema manager for the adaptive learning platform's PostgreSQL database."""
