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

    result = plan_migrations(database_url, to, progress=lambda line: click.echo(f"alp-db: {line}", err=True))
    if fmt == "json":
        render(result.as_json(), "json")
    else:
        click.echo(render_plan(result))
    sys.exit(EXIT_PROBLEMS if result.blocking or result.failed else EXIT_OK)


def render_plan(result: object) -> str:
    """The plan as a DBA reads it: per revision, per statement, locks then risks."""
    from scripts.migrations.plan import MigrationPlan

    assert isinstance(result, MigrationPlan)
    lines = [f"target: {result.target} at {result.current or 'base'}; measured on the {result.scratch}"]
    if not result.revisions:
        lines.append(f"nothing to plan: the target is at {result.to}")
    for revision in result.revisions:
        verdict = "BLOCKS WRITES" if revision.blocking else "no long write-blocking lock"
        first_doc_line = revision.description.strip().splitlines()[0] if revision.description.strip() else ""
        lines.append("")
        lines.append(f"{revision.revision}  {first_doc_line}  [{verdict}]")
        for statement in revision.statements:
            how = (
                "autocommit block (own transactions)"
                if statement.autocommit
                else "in the revision's transaction"
            )
            lines.append(f"  - {statement.sql[:100]}")
            lines.append(f"      {how}; {statement.duration_ms} ms on the empty schema")
            for lock in statement.locks:
                source = (
                    "" if lock.measured else " (documented for CONCURRENTLY; not observable after commit)"
                )
                lines.append(f"      {lock.mode} on {lock.relation}: {lock.effect}{source}")
            for label, names in (
                ("rewrites", statement.rewritten),
                ("scans", statement.scanned),
                ("creates", statement.created),
                ("drops", statement.dropped),
            ):
                if names:
                    lines.append(f"      {label}: {', '.join(names)}")
            for risk in statement.risks:
                lines.append(f"      ! {risk}")
        if revision.error:
            lines.append(f"  FAILED on the scratch copy: {revision.error}")
    return "\n".join(lines)
