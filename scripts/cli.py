"""The ``alp-db`` command line: parse, call one library function, render, map to an exit code.

Heavy modules (SQLAlchemy, Alembic) are imported inside the commands, so ``--help`` is fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_PROBLEMS, EXIT_ERROR = 0, 1, 2


def handle_errors(fn: F) -> F:
    """Turn AlpDbError into one line on stderr and its exit code; ``--debug`` re-raises."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from scripts.errors import AlpDbError

        ctx = click.get_current_context()
        try:
            return fn(*args, **kwargs)
        except AlpDbError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"alp-db: error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


database_url_option = click.option(
    "--database-url",
    envvar="DATABASE_URL",
    show_envvar=True,
    default=None,
    help="PostgreSQL URL; default: the local development database under .pgdata/.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def main(debug: bool) -> None:
    """alp-db: the schema manager for the adaptive learning platform's PostgreSQL database."""


@main.command()
@database_url_option
@click.option("--to", "target", default="head", show_default=True, help="Target revision.")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it (offline mode).")
@handle_errors
def migrate(database_url: str | None, target: str, sql: bool) -> None:
    """Apply pending migrations (like `alembic upgrade head`)."""
    from scripts import migrations

    migrations.upgrade(database_url, target, sql=sql)


@main.group("dev-db")
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
    from scripts import devdb

    cluster, started = devdb.start_dev(bindir)
    state = "started" if started else "already running"
    click.echo(f"{state}: PostgreSQL {cluster.server_version()} in {cluster.home}")


@dev_db.command("stop")
@handle_errors
def dev_db_stop() -> None:
    """Stop the local database."""
    from scripts import devdb

    cluster = devdb.dev_cluster()
    click.echo("stopped" if cluster.stop() else "not running")


@dev_db.command("status")
@handle_errors
def dev_db_status() -> None:
    """Say whether the local database exists and runs."""
    from scripts import devdb

    cluster = devdb.dev_cluster()
    if not cluster.initialised():
        click.echo(f"not initialised ({cluster.home})")
        sys.exit(3)
    running = cluster.running()
    click.echo(f"{'running' if running else 'stopped'}: PostgreSQL {cluster.server_version()} in {cluster.home}")
    sys.exit(0 if running else 3)


@dev_db.command("url")
@handle_errors
def dev_db_url() -> None:
    """Print the local database's URL (starting it if needed)."""
    from scripts import devdb

    cluster, _ = devdb.start_dev()
    click.echo(cluster.url().render_as_string(hide_password=True))


@dev_db.command("destroy")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def dev_db_destroy(yes: bool) -> None:
    """Stop the local database and delete its data."""
    from scripts import devdb

    cluster = devdb.dev_cluster()
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete {cluster.home} and all its data?", abort=True)
    cluster.destroy()
    click.echo(f"destroyed {cluster.home}")
