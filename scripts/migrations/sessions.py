"""The migration session: named so it can be found, cancelled by the server when its client dies,
and never started while an earlier one is still at work."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Connection

from scripts.errors import LockTimeout

# application_name of the connection that runs revisions (pg_stat_activity); the lock
# connection and every other command keep "alp-db"
MIGRATION_APPLICATION_NAME = "alp-db migration"
# How often the server checks, while a statement runs, that the migrator is still connected;
# it cancels the statement (and the revision) of a migrator that is gone. PostgreSQL 14+
# ("client_connection_check_interval", Runtime Config: Connections and Authentication).
CLIENT_CHECK_INTERVAL = "1s"
CLIENT_CHECK_SINCE = 140000
POLL_S = 0.2


def prepare_migration_session(conn: Connection) -> None:
    """Name the session and, where the server has it, let it notice a vanished client."""
    settings = {"application_name": MIGRATION_APPLICATION_NAME}
    version = conn.scalar(text("SELECT current_setting('server_version_num')::int"))
    if version is not None and version >= CLIENT_CHECK_SINCE:
        settings["client_connection_check_interval"] = CLIENT_CHECK_INTERVAL
    for name, value in settings.items():
        conn.execute(text("SELECT set_config(:n, :v, false)"), {"n": name, "v": value})


def earlier_migrations(conn: Connection) -> list[tuple[int, str, str]]:
    """(pid, state, query) of migration sessions in this database other than ``conn``'s."""
    rows = conn.execute(
        text(
            "SELECT pid, coalesce(state, ''), left(query, 80) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = :app"
            " AND pid <> pg_backend_pid()"
        ),
        {"app": MIGRATION_APPLICATION_NAME},
    ).all()
    return [(int(pid), str(state), str(query)) for pid, state, query in rows]


def wait_for_earlier_migrations(
    conn: Connection, *, wait_seconds: float, notice: Callable[[str], None]
) -> None:
    """Under the migration lock, an earlier migration session can only be one whose migrator
    died mid-revision: its backend runs on until the server notices. Wait for it to end, or
    say so clearly, instead of failing later on a lock it holds."""
    deadline = time.monotonic() + wait_seconds
    announced = False
    while True:
        found = earlier_migrations(conn)
        if not found:
            return
        pid, state, query = found[0]
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"an earlier migration's backend (pid {pid}, {state}: {query!r}) is still running"
                f" after {wait_seconds:g}s; its migrator is gone",
                f"wait for it to end, or end it with SELECT pg_terminate_backend({pid})",
            )
        if not announced:
            notice(f"waiting for an earlier migration's backend (pid {pid}, {state}) to end")
            announced = True
        time.sleep(POLL_S)
