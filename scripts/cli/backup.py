"""``alp-db backup``: exit 0 written (and verified), 1 the verification found a difference, 2 error."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from scripts.cli.common import EXIT_OK, EXIT_PROBLEMS, database_url_option, handle_errors
from scripts.db.sizes import human_size


@click.command()
@database_url_option
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Dump file to create (never overwritten); default: backups/<db>_<YYYYmmdd_HHMMSS>.dump (UTC).",
)
@click.option(
    "--bindir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Look here first for a pg_dump/pg_restore of the server's major version (also ALP_DB_PG_BINDIR).",
)
@click.option(
    "--verify",
    is_flag=True,
    help="Restore the dump into a scratch database, compare schema and row counts, drop it.",
)
@handle_errors
def backup(database_url: str | None, output: Path | None, bindir: Path | None, verify: bool) -> None:
    """Dump the database with the server's own pg_dump (custom format, mode 0600, no password in argv)."""
    from scripts.db.clients import install_hint
    from scripts.ops.backup import create_backup

    result = create_backup(database_url, output, bindir=bindir, verify=verify)
    click.echo(
        f"backup written: {result.path} ({human_size(result.size)} in {result.duration_s:.1f}s, "
        f"pg_dump {result.pg_dump.version} for PostgreSQL {result.server_version})"
    )
    click.echo(f"restore with: {result.restore_command}")
    if result.pg_restore is None:
        major = result.server_version.split(".")[0]
        click.echo(f"no pg_restore {major} found here: {install_hint(int(major))}", err=True)
    check = result.verification
    if check is None:
        return
    if check.ok:
        click.echo(
            f"verified: restored into scratch database {check.scratch_database} (dropped);"
            f" schema identical, {check.tables} tables and {check.rows} rows match"
        )
        if check.dump_lines_differing:
            click.echo(
                f"note: {check.dump_lines_differing} line(s) of pg_dump -s print differently after the"
                " restore (PostgreSQL re-deparses CHECK expressions); the catalog facts are equal"
            )
        sys.exit(EXIT_OK)
    if not check.schema_equal:
        click.echo("verify: the restored schema differs from the database's (compare pg_dump -s of both)")
    for mismatch in check.row_mismatches:
        click.echo(f"verify: row count differs, database vs restored: {mismatch}")
    sys.exit(EXIT_PROBLEMS)
