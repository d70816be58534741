"""``alp-db migration status|generate|rollback|plan``."""

from __future__ import annotations

import sys

import click

from scripts.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    database_url_option,
    format_option,
    handle_errors,
    interactive,
    render,
    runtime_options,
)
from scripts.cli.migration_plan import plan


@click.group()
def migration() -> None:
    """Inspect, create, plan and roll back revisions."""


migration.add_command(plan)


@migration.command()
@database_url_option
@format_option
@handle_errors
def status(database_url: str | None, fmt: str) -> None:
    """Every revision: applied?, when, how long, by whom, checksum ok?"""
    from scripts.migrations.status import migration_status

    report = migration_status(database_url)
    rows = [r.as_json() for r in report.revisions]
    if fmt == "json":
        render({"current": list(report.current), "heads": list(report.heads), "revisions": rows}, "json")
    else:
        for row in rows:
            row["applied"] = "yes" if row["applied"] else "pending"
            row["checksum_ok"] = {True: "ok", False: "CHANGED", None: ""}[row["checksum_ok"]]  # type: ignore[index]
        render(
            rows,
            "table",
            columns=[
                "revision",
                "name",
                "applied",
                "applied_at",
                "duration_ms",
                "applied_by",
                "checksum_ok",
                "last_error",
            ],
            title=f"current: {', '.join(report.current) or 'base'}",
        )
    sys.exit(EXIT_PROBLEMS if report.problems else EXIT_OK)


@migration.command()
@click.argument("name")
@click.option(
    "--autogenerate", is_flag=True, help="Compare the models with the database and write the operations."
)
@database_url_option
@handle_errors
def generate(name: str, autogenerate: bool, database_url: str | None) -> None:
    """Create the next NNNN_NAME.py revision (NAME in snake_case, saying what it does)."""
    from scripts.migrations.revisions import generate_revision

    path = generate_revision(name, autogenerate=autogenerate, database_url=database_url)
    click.echo(f"created {path}")


@migration.command()
@click.option("--steps", type=int, default=None, help="How many revisions to undo (default 1).")
@click.option(
    "--to", "to", default=None, help="Undo down to this revision (it stays applied); 'base' for all."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@database_url_option
@runtime_options
@handle_errors
def rollback(
    steps: int | None, to: str | None, yes: bool, database_url: str | None, **overrides: str | None
) -> None:
    """Undo applied revisions, newest first, each in its own transaction."""
    from scripts.errors import ConfigError
    from scripts.migrations.rollback import plan_rollback
    from scripts.migrations.rollback import rollback as run_rollback

    plan = plan_rollback(database_url, steps=steps, to=to)
    listing = ", ".join(f"{rev} ({name})" for rev, name in plan.revisions)
    if not yes:
        if not interactive():
            raise ConfigError(f"rolling back {listing} needs confirmation", "pass --yes")
        click.confirm(f"Roll back {listing}, leaving the database at {plan.target}?", abort=True)
    run_rollback(plan, database_url, overrides=overrides)
    click.echo(f"rolled back {listing}; now at {plan.target}")
