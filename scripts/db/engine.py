"""Engines and connection errors: one place that turns driver failures into one clear line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from scripts import gc_pause
from scripts.db.sqlstate import ADMIN_SHUTDOWN, CANNOT_CONNECT_NOW, CRASH_SHUTDOWN, sqlstate
from scripts.db.urls import redact, scrub
from scripts.errors import AlpDbError, DatabaseUnreachable, LoginRefused, PermissionDenied

ENV_CONNECT_TIMEOUT = "ALP_DB_CONNECT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT_S = 5


def make_engine(url: URL, *, session_settings: dict[str, str] | None = None, **kwargs: object) -> Engine:
    """An engine that fails fast on an unreachable host and names itself in pg_stat_activity.

    ``session_settings`` (e.g. lock_timeout) are sent in the startup packet (libpq
    ``options``), so they cost no round trip and hold for the whole session.
    """
    gc_pause.resume()  # a command's work starts here: its start-up pause (scripts.gc_pause) ends
    timeout = int(os.environ.get(ENV_CONNECT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT_S))
    connect_args: dict[str, object] = {"connect_timeout": timeout, "application_name": "alp-db"}
    if session_settings:
        # libpq splits options on spaces; a backslash escapes one (values here are validated)
        connect_args["options"] = " ".join(
            f"-c {name}={value.replace(' ', chr(92) + ' ')}" for name, value in session_settings.items()
        )
    if url.get_dialect().driver == "psycopg2":
        # no hstore here: skip the type lookup psycopg2's dialect sends on every first connect
        kwargs.setdefault("use_native_hstore", False)
    return create_engine(url, poolclass=NullPool, connect_args=connect_args, **kwargs)


def first_line(exc: BaseException, url: URL | None, *, default: str = "failed") -> str:
    """The first line of a driver error, its password scrubbed: the one way to show one.

    psycopg2 puts the server's message on the first line and DETAIL/HINT/CONTEXT after it;
    SQLAlchemy appends the statement and a link, which a person does not need.
    """
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(orig).strip().splitlines()
    return scrub(lines[0].strip(), url) if lines else default


# The session is gone (PostgreSQL Appendix A): class 08 "Connection Exception", and the
# server's shutdown codes (a restart, pg_terminate_backend, recovery).
_SESSION_ENDED = frozenset({ADMIN_SHUTDOWN, CRASH_SHUTDOWN, CANNOT_CONNECT_NOW})


def connection_lost(exc: BaseException) -> bool:
    """Whether a driver error means the session is gone, so the operation can only be resumed
    on a new connection (SQLAlchemy marks it ``connection_invalidated``, "Dealing with
    Disconnects"; the SQLSTATE covers errors it does not recognise)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    code = sqlstate(exc) or ""
    return code.startswith("08") or code in _SESSION_ENDED


def describe_connect_error(exc: DBAPIError, url: URL) -> AlpDbError:
    """Map a failed connection to one line naming the problem and the fix, password scrubbed."""
    detail = first_line(exc, url, default="")
    text = detail.lower()
    where = redact(url)
    if "password authentication failed" in text or "no password supplied" in text:
        return LoginRefused(
            f"login refused for user {url.username!r} on {where}",
            "check the password in DATABASE_URL",
        )
    if "database" in text and "does not exist" in text:
        return LoginRefused(
            f"database {url.database!r} does not exist on {where}",
            "create it (createdb) or fix the database name in DATABASE_URL",
        )
    if "role" in text and "does not exist" in text:
        return LoginRefused(
            f"role {url.username!r} does not exist on {where}", "fix the user in DATABASE_URL"
        )
    if "permission denied" in text:
        return PermissionDenied(f"permission denied connecting to {where}: {detail}")
    return DatabaseUnreachable(
        f"cannot reach the database at {where}: {detail or 'connection failed'}",
        "check the host and port, and that the server is running (pg_isready)",
    )


@contextmanager
def connect(engine: Engine) -> Iterator[Connection]:
    """``engine.connect()`` with connection failures turned into AlpDbError."""
    try:
        conn = engine.connect()
    except OperationalError as exc:
        raise describe_connect_error(exc, engine.url) from None
    with conn:
        yield conn
