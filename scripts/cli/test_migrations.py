"""``alp-db test-migrations``: the guide's complete test suite, one pass/fail line per step."""

from __future__ import annotations

import sys

import click

from scripts.cli.common import EXIT_OK, EXIT_PROBLEMS, format_option, handle_errors, render


@click.command("test-migrations")
@click.option(
    "--database-url",
    envvar="DATABASE_URL",
    show_envvar=True,
    default=None,
    help="Run against this database; default: a throwaway PostgreSQL started and removed here.",
)
@click.option("--seed", "seed_value", type=int, default=42, show_default=True, help="Seed for the test data.")
@click.option(
    "--replace",
    is_flag=True,
    help="Empty the platform tables of a database that already holds seed data, and seed again.",
)
@format_option
@handle_errors
def test_migrations(database_url: str | None, seed_value: int, replace: bool, fmt: str) -> None:
    """Connectivity, migrations, schema validation, seed data, basic queries, summary."""
    from scripts.ops.smoke import StepResult, run_smoke

    def show(step: StepResult) -> None:
        if fmt == "table":
            mark = {"pass": "PASS", "fail": "FAIL", "skipped": "SKIP"}[step.status]
            click.echo(f"{step.number}. {mark}  {step.name:<20} {step.seconds:6.2f}s  {step.detail}")

    if fmt == "table":
        target = "a throwaway database" if database_url is None else "the database given"
        click.echo(f"test-migrations on {target}", err=True)
    report = run_smoke(database_url, seed_value=seed_value, replace=replace, on_step=show)
    if fmt == "json":
        render(report.as_json(), "json")
    sys.exit(EXIT_OK if report.ok else EXIT_PROBLEMS)
