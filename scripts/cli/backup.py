"""``alp-db backup``."""

from __future__ import annotations

from pathlib import Path

import click

from scripts.cli.common import database_url_option, handle_errors


@click.command()
@database_url_option
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Dump file to create (never overwritten); default: backups/<db>_<YYYYmmdd_HHMMSS>.dump (UTC).",
)
@handle_errors
def backup(database_url: str | None, output: Path | None) -> None:
    """Dump the database with pg_dump (custom format, file mode 0600, password never in argv)."""
    from rich.filesize import decimal

    from scripts.ops.backup import create_backup

    result = create_backup(database_url, output)
    click.echo(
        f"backup written: {result.path} ({decimal(result.size)} in {result.duration_s:.1f}s, "
        f"pg_dump {result.pg_dump_version}); restore with pg_restore --dbname=... {result.path}"
    )
