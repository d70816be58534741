"""``alp-db dev-db start|stop|status|url|env|psql|destroy``: the local development database."""

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
@click.option(
    "--sqlalchemy",
    "sqlalchemy_form",
    is_flag=True,
    help="Print SQLAlchemy's form (postgresql+psycopg2://...) instead of libpq's.",
)
@handle_errors
def dev_db_url(sqlalchemy_form: bool) -> None:
    """Print the local database's URL (starting it if needed): psql "$(alp-db dev-db url)"."""
    from scripts.db import devdb
    from scripts.db.urls import libpq_url

    cluster, _ = devdb.start_dev()
    url = cluster.url()
    click.echo(url.render_as_string(hide_password=True) if sqlalchemy_form else libpq_url(url))


@dev_db.command("env")
@handle_errors
def dev_db_env() -> None:
    """Print PGHOST/PGPORT/PGUSER/PGDATABASE for the local database: eval "$(alp-db dev-db env)"."""
    import shlex

    from scripts.db import devdb
    from scripts.db.urls import libpq_environment

    cluster, _ = devdb.start_dev()
    for name, value in libpq_environment(cluster.url()).items():
        click.echo(f"export {name}={shlex.quote(value)}")


@dev_db.command("psql", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
@handle_errors
def dev_db_psql(psql_args: tuple[str, ...]) -> None:
    """Open the psql of the local database's own PostgreSQL on it; arguments go to psql."""
    import os

    from scripts.db import devdb
    from scripts.db.urls import libpq_environment
    from scripts.errors import DevDatabaseError

    cluster, _ = devdb.start_dev()
    psql = cluster.bindir / "psql"  # the client of the same release as the server
    if not psql.is_file():
        raise DevDatabaseError(f"{psql} not found", "install that PostgreSQL's client programs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(libpq_environment(cluster.url()))
    sys.stdout.flush()
    os.execve(psql, [str(psql), *psql_args], env)


@dev_db.command("destroy")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def dev_db_destroy(yes: bool) -> None:
    """Stop the local database and delete its data."""
    from scripts.db import devdb
    from scripts.errors import ConfigError

    cluster = devdb.dev_cluster()
    if not yes:
        # as rollback does: no one to ask (stdin closed or not a terminal) is not a yes
        if not interactive():
            raise ConfigError(f"deleting {cluster.home} and all its data needs confirmation", "pass --yes")
        click.confirm(f"Delete {cluster.home} and all its data?", abort=True)
    cluster.destroy()
    click.echo(f"destroyed {cluster.home}")
