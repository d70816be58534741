"""``alp-db validate-schema``: the models and the revision-owned objects against the database."""

from __future__ import annotations

import sys

import click

from scripts.cli.common import database_url_option, handle_errors, report_format_option


@click.command("validate-schema")
@database_url_option
@click.option(
    "--schema",
    default=None,
    metavar="NAME",
    help="The schema the models and revisions target (default: ALP_DB_SCHEMA, else public).",
)
@click.option(
    "--ignore",
    default="",
    metavar="ASPECTS",
    help="Comma-separated aspects to leave out, for teams that manage them elsewhere: privileges,owner.",
)
@report_format_option("EXPECTED / ACTUAL / HOW TO FIX")
@handle_errors
def validate_schema(database_url: str | None, schema: str | None, ignore: str, fmt: str) -> None:
    """Report every difference between the models (and the revisions' own objects) and the database.

    Exit status: 0 the schema matches (warnings are printed), 1 drift, 2 could not check.
    """
    from scripts.findings import exit_code
    from scripts.schema_diff import validate_schema as run
    from scripts.schema_diff.report import render_text

    report = run(database_url, schema=schema, ignore=ignore.split(","))
    click.echo(report.to_json() if fmt == "json" else render_text(report))
    sys.exit(exit_code(report.findings))
