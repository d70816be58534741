"""What every command shares: error handling, common options, output rendering."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_PROBLEMS, EXIT_ERROR = 0, 1, 2


def interactive() -> bool:
    """A person at a terminal can answer a prompt (stdin may even be closed under CI)."""
    return sys.stdin is not None and sys.stdin.isatty()


def handle_errors(fn: F) -> F:
    """Turn AlpDbError into one line on stderr and its exit code.

    ``--debug`` prints the traceback first, and the exit code stays the error's: a script
    that tells "could not run" (2) from "problems found" (1) must not see them change with
    the verbosity (re-raising would make every error Python's exit 1).
    """

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from scripts.errors import AlpDbError

        ctx = click.get_current_context()
        try:
            return fn(*args, **kwargs)
        except AlpDbError as exc:
            if ctx.find_root().params.get("debug"):
                import traceback

                click.echo(traceback.format_exc().rstrip(), err=True)
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


def render(data: Any, fmt: str, *, columns: list[str] | None = None, title: str | None = None) -> None:
    """Print rows as JSON (for CI) or as a table (for people); results go to stdout."""
    if fmt == "json":
        import json

        click.echo(json.dumps(data, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    rows = data if isinstance(data, list) else [data]
    cols = columns or (list(rows[0].keys()) if rows else [])
    table = Table(title=title, show_lines=False)
    for col in cols:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in cols))
    # Off a terminal rich would squeeze the table into 80 columns; let it be as wide as it needs.
    Console(soft_wrap=True, width=None if sys.stdout.isatty() else 250).print(table)


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)


def report_format_option(text_help: str) -> Callable[[F], F]:
    """``--format text|json`` for reports a person reads or CI parses."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help=f"text for people ({text_help}), json for CI.",
    )


def runtime_options(fn: F) -> F:
    """``--lock-timeout``, ``--statement-timeout``, ``--lock-wait`` for commands that migrate."""
    for option in reversed(
        [
            click.option(
                "--lock-timeout",
                default=None,
                metavar="DURATION",
                help="Lock wait of a statement that is not retried (default 5s; ALP_DB_LOCK_TIMEOUT).",
            ),
            click.option(
                "--lock-retry-timeout",
                default=None,
                metavar="DURATION",
                help="Lock wait of a revision's first attempt, growing to 5x on retries"
                " (default 100ms; ALP_DB_LOCK_RETRY_TIMEOUT).",
            ),
            click.option(
                "--lock-retry-budget",
                default=None,
                metavar="SECONDS",
                help="How long one revision may keep retrying for its locks; 0: no retries"
                " (default 60; ALP_DB_LOCK_RETRY_BUDGET).",
            ),
            click.option(
                "--statement-timeout",
                default=None,
                metavar="DURATION",
                help="Longest run of one statement (default 30min; ALP_DB_STATEMENT_TIMEOUT).",
            ),
            click.option(
                "--lock-wait",
                "migration_lock_wait",
                default=None,
                metavar="SECONDS",
                help="How long to wait for another migrator (default 300; ALP_DB_MIGRATION_LOCK_WAIT).",
            ),
        ]
    ):
        fn = option(fn)
    return fn
