"""``alp-db validate-migrations``: revision files, SQL lint and history, with an exit code for CI."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from scripts.cli.common import database_url_option, handle_errors, report_format_option

if TYPE_CHECKING:
    from scripts.checks.report import ValidationReport


@click.command("validate-migrations")
@database_url_option
@report_format_option("findings with how to fix them")
@click.option(
    "--offline", is_flag=True, help="Check only the files (names, heads, SQL lint), not a database."
)
@click.option(
    "--plan",
    "with_plan",
    is_flag=True,
    help="Also measure the pending revisions (`alp-db migration plan`) and check that each"
    " docstring names the write-blocking locks it takes.",
)
@handle_errors
def validate_migrations(database_url: str | None, fmt: str, offline: bool, with_plan: bool) -> None:
    """Check revision files, their SQL and the migration history; exit 0 clean, 1 problems, 2 could not run.

    \b
    Files:   NNNN_description.py names, revision id == NNNN, no gaps, a single head.
    Lint:    squawk over each revision's SQL for statements that lock or rewrite tables in use.
    History: every applied revision present and unchanged since (checksum), migration_history
             consistent with alembic_version and in order.
    """
    from scripts.checks.report import validate_migrations as validate

    report = validate(database_url, offline=offline)
    gaps = _docstring_gaps(database_url) if with_plan else []
    if fmt == "json":
        import json

        data = report.as_dict()
        if with_plan:
            data["docstring_gaps"] = [str(gap) for gap in gaps]
        click.echo(json.dumps(data, indent=2))
    else:
        _print_text(report)
        for gap in gaps:
            click.echo(f"ERROR [docstring-names-measured-locks] {gap}")
    sys.exit(max(report.exit_code, 1 if gaps else 0))


def _docstring_gaps(database_url: str | None) -> list[object]:
    from scripts.migrations.plan import plan_migrations
    from scripts.migrations.plan_check import docstring_gaps

    return list(docstring_gaps(plan_migrations(database_url)))


def _print_text(report: ValidationReport) -> None:
    for finding in report.findings:
        where = f" {finding.revision}" if finding.revision else ""
        click.echo(f"{finding.severity.upper()} [{finding.code}]{where}: {finding.message}")
        click.echo(f"  how to fix: {finding.how_to_fix}")
    checked = ", ".join(report.checked) + (f" on {report.database}" if report.database else "")
    heads = ", ".join(report.heads) or "none"
    summary = f"{report.revisions} revisions, head {heads}; checked {checked}"
    if report.lint_unchanged:
        summary += (
            f"; linted {len(report.linted)}, not re-linted {len(report.lint_unchanged)} applied and "
            f"unchanged since (checksum): {_ranges(report.lint_unchanged)}"
        )
    if report.findings:
        click.echo(f"{report.errors} error(s), {report.warnings} warning(s) — {summary}")
    else:
        click.echo(f"no problems found — {summary}")


def _ranges(revisions: list[str]) -> str:
    """0001, 0002, 0003, 0007 -> 0001-0003, 0007 (four-digit ids; others listed as they are)."""
    numbered = sorted(int(r) for r in revisions if r.isdigit())
    others = sorted(r for r in revisions if not r.isdigit())
    spans: list[str] = []
    for n in numbered:
        if spans and spans[-1].split("-")[-1] == f"{n - 1:04d}":
            spans[-1] = f"{spans[-1].split('-')[0]}-{n:04d}"
        else:
            spans.append(f"{n:04d}")
    return ", ".join(spans + others)
