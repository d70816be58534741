"""``alp-db migrate`` and ``alp-db test-connection``."""

from __future__ import annotations

import sys

import click

from scripts.cli.common import (
    EXIT_PROBLEMS,
    database_url_option,
    handle_errors,
    interactive,
    runtime_options,
)


@click.command()
@database_url_option
@click.option("--to", "target", default="head", show_default=True, help="Target revision.")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it (offline mode; no database).")
@click.option("--backup", is_flag=True, help="Take a pg_dump backup first (see `alp-db backup`).")
@click.option(
    "--plan",
    "show_plan",
    is_flag=True,
    help="First measure what the pending revisions lock (`alp-db migration plan`), then ask.",
)
@click.option("--yes", is_flag=True, help="With --plan: apply without asking (for CI).")
@runtime_options
@handle_errors
def migrate(
    database_url: str | None,
    target: str,
    sql: bool,
    backup: bool,
    show_plan: bool,
    yes: bool,
    **overrides: str | None,
) -> None:
    """Apply pending migrations (like `alembic upgrade head`)."""
    from scripts.migrations import api as migrations

    if sql:
        if backup:
            raise click.UsageError("--backup needs a database; it cannot be combined with --sql")
        migrations.upgrade(database_url, target, sql=True, output=sys.stdout, overrides=overrides)
        return
    if show_plan:
        target = _approved_target(database_url, target, yes)
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


def _approved_target(database_url: str | None, target: str, yes: bool) -> str:
    """Show the measured plan and return the revision it ends at, once approved.

    The revision id (not "head") is what then runs, so the plan a person approved is the one
    applied even if a revision lands in between. Off a terminal there is nobody to ask: a
    plan with blocking steps needs --yes (exit 1 otherwise).
    """
    from scripts.errors import PlanFailed
    from scripts.migrations.plan import plan_migrations
    from scripts.migrations.plan_report import render_plan

    plan = plan_migrations(
        database_url, target, progress=lambda line: click.echo(f"alp-db: {line}", err=True)
    )
    click.echo(render_plan(plan))
    if plan.failed:
        raise PlanFailed(
            "a revision failed on the scratch copy", "nothing was applied; fix the revision first"
        )
    if not plan.revisions:
        return target
    if not yes:
        if interactive():
            click.confirm("Apply these revisions to the database?", abort=True)
        elif plan.blocking:
            click.echo(
                "alp-db: error: the plan has steps that block writes and nobody is at a terminal to"
                " approve them — read the plan, then rerun with --yes",
                err=True,
            )
            sys.exit(EXIT_PROBLEMS)
    return plan.revisions[-1].revision
