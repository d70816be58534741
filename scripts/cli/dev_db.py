"""``alp-db dev-db start|stop|status|url|destroy``: the local development database."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from scripts.cli.common import EXIT_OK, EXIT_PROBLEMS, handle_errors, interactive


@click.group("dev-db")
def dev_db() -> None:
    """Manage the local development database (a PostgreSQL cluster under .pgdata/)."""


bindir_option = click.option(
    "--bindir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="ALP_DB_PG_BINDIR",
    default=None,
    help="PostgreSQL server binaries to use instead of the embedded ones.",
)


@dev_db.command("start")
@bindir_option
@handle_errors
def dev_db_start(bindir: Path | None) -> None:
    """Start the local database (initialising it on first use)."""
    from scripts.db import devdb

    cluster, started = devdb.start_dev(bindir)
    state = "started" if started else "already running"
    click.echo(f"{state}: PostgreSQL {cluster.server_version()} in {cluster.home}")


@dev_db.command("stop")
@handle_errors
def dev_db_stop() -> None:
    """Stop the local database."""
    from scripts.db import devdb

    cluster = devdb.dev_cluster()
    click.echo("stopped" if cluster.stop() else "not running")


@dev_db.command("status")
@handle_errors
def dev_db_status() -> None:
    """Say whether the local database exists and runs: exit 0 running, 1 stopped or absent."""
    from scripts.db import devdb

    cluster = devdb.dev_cluster()
    if not cluster.initialised():
        click.echo(f"not initialised ({cluster.home})")
        sys.exit(EXIT_PROBLEMS)
    running = cluster.running()
    click.echo(
        f"{'running' if running else 'stopped'}: PostgreSQL {cluster.server_version()} in {cluster.home}"
    )
    # README exit codes: a stopped database is a finding (1), not a failure to look (2)
    sys.exit(EXIT_OK if running else EXIT_PROBLEMS)


@dev_db.command("url")
@handle_errors
def dev_db_url() -> None:
    """Print the local database's URL (starting it if needed)."""
    from scripts.db import devdb

    cluster, _ = devdb.start_dev()
    click.echo(cluster.url().render_as_string(hide_password=True))


@dev_db.command("destroy")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def dev_db_destroy(yes: bool) -> None:
    """Stop the local database and delete its data."""
    from scripts.db import devdb

    cluster = devdb.dev_cluster()
    if not yes and interactive():
        click.confirm(f"Delete {cluster.home} and all its data?", abort=True)
    cluster.destroy()
    click.echo(f"destroyed {cluster.home}")
