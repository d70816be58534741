"""``alp-db migration plan``: what each pending revision will lock and rewrite, measured."""

from __future__ import annotations

import sys

import click

from scripts.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    database_url_option,
    format_option,
    handle_errors,
    render,
)


@click.command("plan")
@click.option("--to", "to", default="head", show_default=True, help="Plan up to this revision.")
@database_url_option
@format_option
@handle_errors
def plan(to: str, database_url: str | None, fmt: str) -> None:
    """Run the pending revisions on a scratch copy of the schema and show what they lock.

    Exit 0 when nothing blocks writes on a table that holds rows for longer than a metadata
    change, 1 when something does (read the plan and decide), 2 when it could not plan.
    """
    from scripts.migrations.plan import plan_migrations
    from scripts.migrations.plan_report import render_plan

    result = plan_migrations(database_url, to, progress=lambda line: click.echo(f"alp-db: {line}", err=True))
    if fmt == "json":
        render(result.as_json(), "json")
    else:
        click.echo(render_plan(result))
    sys.exit(EXIT_PROBLEMS if result.blocking or result.failed else EXIT_OK)
