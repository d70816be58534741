"""Watch a migration run statement by statement: locks held, relations rewritten or scanned.

While installed, SQLAlchemy's ``before_cursor_execute`` / ``after_cursor_execute`` events of
every engine connected to one database (the plan's scratch copy) take a catalog snapshot on
the same DBAPI connection around each statement, so what is read is the migration backend's
own state inside its own transaction:

- ``pg_locks`` where ``pid = pg_backend_pid()``: the relation locks granted so far; a lock is
  held until the transaction ends, so a statement's locks are the ones new after it;
- ``pg_class.relfilenode``: a table or index whose file node changed was rewritten
  (PostgreSQL docs, "Database File Layout"); new and vanished oids were created or dropped;
- ``pg_stat_xact_user_tables.seq_scan``: the sequential scans of each table *in the current
  transaction* (docs, "The Cumulative Statistics System"), so a statement that read a whole
  table (a validation, an index build) shows up even on the empty scratch schema.

The snapshot runs on the raw DBAPI cursor, so it fires no event itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Delete, Insert, Select, Update, event
from sqlalchemy.engine import Connection, Engine

from scripts.migrations.history import HISTORY_TABLE

# One round trip; system schemas are left out (the snapshot's own catalog reads lock them).
SNAPSHOT_SQL = """
SELECT 'rel', c.oid::bigint, n.nspname || '.' || c.relname, c.relkind::text, c.relfilenode::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'i', 'I', 'm', 'S')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
UNION ALL
SELECT 'lock', l.relation::bigint, l.mode, NULL, NULL
FROM pg_locks l
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
UNION ALL
SELECT 'scan', s.relid::bigint, NULL, NULL, s.seq_scan
FROM pg_stat_xact_user_tables s WHERE s.seq_scan > 0
UNION ALL
SELECT 'con', c.oid::bigint, c.conrelid::regclass::text || '.' || c.conname, c.contype::text, NULL
FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
"""

# What the runtime itself writes around each revision: not the revision's work.
BOOKKEEPING_TABLES = frozenset({"alembic_version", HISTORY_TABLE.name})


@dataclass
class Snapshot:
    relations: dict[int, tuple[str, str, int]] = field(default_factory=dict)  # oid -> name, kind, node
    locks: set[tuple[int, str]] = field(default_factory=set)  # (oid, mode)
    scans: dict[int, int] = field(default_factory=dict)  # oid -> seq_scan in this transaction
    constraints: dict[int, str] = field(default_factory=dict)  # oid -> table.constraint


@dataclass
class Observation:
    """One statement as the migration backend ran it."""

    pid: int
    sql: str
    autocommit: bool
    duration_s: float
    before: Snapshot
    after: Snapshot
    bookkeeping: bool  # the runtime's own alembic_version / migration_history writes
    compiled_select: bool  # a SELECT built by the runtime or Alembic, not the revision's SQL


def take_snapshot(dbapi_connection: Any) -> Snapshot:
    snapshot = Snapshot()
    with dbapi_connection.cursor() as cursor:
        cursor.execute(SNAPSHOT_SQL)
        for kind, oid, name, relkind, number in cursor.fetchall():
            if kind == "rel":
                snapshot.relations[oid] = (name, relkind, number)
            elif kind == "lock":
                snapshot.locks.add((oid, name))
            elif kind == "scan":
                snapshot.scans[oid] = number
            else:
                snapshot.constraints[oid] = name
    return snapshot


def _is_bookkeeping(context: Any) -> bool:
    """An INSERT/UPDATE/DELETE the runtime compiles for its own tables (never user SQL)."""
    statement = getattr(getattr(context, "compiled", None), "statement", None)
    if isinstance(statement, (Insert, Update, Delete)):
        return getattr(statement.table, "name", None) in BOOKKEEPING_TABLES
    return False


def _is_compiled_select(context: Any) -> bool:
    """A SELECT built with SQLAlchemy: the runtime's and Alembic's own catalog reads."""
    return isinstance(getattr(getattr(context, "compiled", None), "statement", None), Select)


class Probe:
    """Collects an Observation for every statement run on ``database``."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.observations: list[Observation] = []

    def _watched(self, conn: Connection) -> bool:
        return conn.engine.url.database == self.database

    def before(self, conn: Connection, cursor: Any, statement: str, *_: Any) -> None:
        if not self._watched(conn):
            return
        dbapi = cursor.connection
        try:
            before = take_snapshot(dbapi)
        except Exception:  # an aborted transaction: the statement will fail too, nothing to see
            conn.info.pop("alp_db_probe", None)
            return
        conn.info["alp_db_probe"] = (before, time.perf_counter())

    def after(
        self, conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, *_: Any
    ) -> None:
        started = conn.info.pop("alp_db_probe", None)
        if started is None or not self._watched(conn):
            return
        before, t0 = started
        duration = time.perf_counter() - t0
        dbapi = cursor.connection
        # the text the server ran, bound values in (psycopg2's mogrify), so the parser reads it
        sent = cursor.mogrify(statement, parameters) if parameters else statement
        self.observations.append(
            Observation(
                pid=dbapi.get_backend_pid(),
                sql=sent.decode() if isinstance(sent, bytes) else sent,
                autocommit=bool(dbapi.autocommit),
                duration_s=duration,
                before=before,
                after=take_snapshot(dbapi),
                bookkeeping=_is_bookkeeping(context),
                compiled_select=_is_compiled_select(context),
            )
        )

    def take(self) -> list[Observation]:
        taken, self.observations = self.observations, []
        return taken


@contextmanager
def probing(database: str) -> Iterator[Probe]:
    """Install a Probe on every engine for the duration of the block."""
    probe = Probe(database)
    event.listen(Engine, "before_cursor_execute", probe.before)
    event.listen(Engine, "after_cursor_execute", probe.after)
    try:
        yield probe
    finally:
        event.remove(Engine, "before_cursor_execute", probe.before)
        event.remove(Engine, "after_cursor_execute", probe.after)
