"""Explicit transactions on a connection in AUTOCOMMIT mode.

A data migration commits once per batch, so it runs on an AUTOCOMMIT connection (its own, or
the one Alembic's ``autocommit_block()`` hands a revision) and opens each transaction itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from scripts.db.target import session


@contextmanager
def autocommit_connection(
    database_url: str | URL | None, connection: Connection | None
) -> Iterator[Connection]:
    """The caller's connection (already AUTOCOMMIT), or a new one to the resolved database."""
    if connection is not None:
        yield connection
        return
    with session(database_url, isolation_level="AUTOCOMMIT") as conn:
        yield conn


@contextmanager
def explicit_transaction(conn: Connection, *, commit: bool = True, begun: bool = False) -> Iterator[None]:
    """BEGIN ... COMMIT (or ROLLBACK, ``commit=False``) sent by hand on an AUTOCOMMIT connection.

    ``begun``: the first statement inside sends BEGIN itself (a batch saves the round trip).
    """
    if not begun:
        conn.exec_driver_sql("BEGIN")
    try:
        yield
    except BaseException:
        # if the connection is gone, so is the transaction (and SQLAlchemy would refuse the
        # ROLLBACK with PendingRollbackError, hiding the error that says why)
        if not conn.invalidated:
            with suppress(DBAPIError):
                conn.exec_driver_sql("ROLLBACK")
        raise
    conn.exec_driver_sql("COMMIT" if commit else "ROLLBACK")
