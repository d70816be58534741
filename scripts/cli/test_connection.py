"""``alp-db test-connection``: connectivity, latency, revision and migration privileges."""

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


@click.command("test-connection")
@database_url_option
@format_option
@handle_errors
def test_connection(database_url: str | None, fmt: str) -> None:
    """Check connectivity, latency, current revision and migration privileges."""
    from scripts.ops.connection_check import check_connection

    report = check_connection(database_url)
    if fmt == "json":
        render(report.as_json(), "json")
    else:
        click.echo(f"connected:  {report.url}")
        click.echo(f"server:     PostgreSQL {report.server_version}, {report.server_role}")
        if report.server_role == "primary":
            click.echo(f"standbys:   {', '.join(report.standbys) if report.standbys else 'none'}")
        click.echo(f"database:   {report.database} as {report.user}")
        click.echo(f"latency:    {report.latency_ms} ms (connect {report.connect_ms} ms)")
        click.echo(f"revision:   {report.revision_text}")
        verdict = "yes" if report.can_migrate else "no — missing " + "; ".join(report.missing)
        click.echo(f"can migrate: {verdict}")
    sys.exit(EXIT_OK if report.can_migrate else EXIT_PROBLEMS)
