"""The checkpoint table of data migrations: one row per name, and one running run per name.

Each batch moves its row in the same transaction as its UPDATE (sql.py), so the row always
says exactly which keys are done.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, Text, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import URL, Connection
from sqlalchemy.schema import CreateTable

from scripts.backfill.autocommit import autocommit_connection, explicit_transaction
from scripts.backfill.plan import ADVISORY_CLASS, CHECKPOINT_TABLE, Plan, name_lock_id
from scripts.db.naming import NAMING_CONVENTION
from scripts.errors import DataMigrationError

CHECKPOINTS = Table(
    CHECKPOINT_TABLE,
    MetaData(naming_convention=NAMING_CONVENTION),
    Column("name", Text, primary_key=True),
    Column("table_name", Text, nullable=False),
    Column("key_columns", ARRAY(Text), nullable=False),
    Column("set_expr", Text, nullable=False),
    Column("where_expr", Text),
    # the last key done, each column as text (typed back by the comparison's unknown literal)
    Column("last_key", ARRAY(Text)),
    Column("rows_done", BigInteger, nullable=False, server_default=text("0")),
    Column("rows_walked", BigInteger, nullable=False, server_default=text("0")),
    Column("batches", BigInteger, nullable=False, server_default=text("0")),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True)),
    # why a running migration waits (health.py), NULL while it works
    Column("paused_reason", Text),
)
# added after the first release: older tables get it on the next run (ensure_checkpoint_table)
_ADDED_COLUMNS = ("paused_reason",)


@dataclass(frozen=True)
class CheckpointStatus:
    name: str
    table: str
    key: tuple[str, ...]
    last_key: tuple[str, ...] | None
    rows_done: int
    rows_walked: int
    batches: int
    started_at: Any
    updated_at: Any
    finished_at: Any
    running: bool = False  # a run holds the migration's advisory lock now
    paused_reason: str | None = None

    @property
    def state(self) -> str:
        """finished; running; paused (running, waiting for the database's health); stopped
        (not finished, nobody running it: the same command resumes it)."""
        if self.finished_at is not None:
            return "finished"
        if not self.running:
            return "stopped"
        return "paused" if self.paused_reason else "running"

    def as_row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "table": self.table,
            "key": ", ".join(self.key),
            "state": self.state,
            "why": self.paused_reason if self.state == "paused" else None,
            "rows_done": self.rows_done,
            "rows_walked": self.rows_walked,
            "batches": self.batches,
            "last_key": ", ".join(self.last_key) if self.last_key else None,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
        }


def checkpoint_table_exists(conn: Connection) -> bool:
    return conn.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": CHECKPOINT_TABLE}) is True


def ensure_checkpoint_table(conn: Connection) -> None:
    conn.execute(CreateTable(CHECKPOINTS, if_not_exists=True))
    q = conn.dialect.identifier_preparer.quote
    for name in _ADDED_COLUMNS:
        column = CHECKPOINTS.c[name]
        kind = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE {q(CHECKPOINT_TABLE)} ADD COLUMN IF NOT EXISTS {q(name)} {kind}")


def _present_columns(conn: Connection) -> list[Any]:
    """The columns of CHECKPOINTS the table has (one made by an older version lacks some)."""
    names = set(
        conn.scalars(
            text("SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass(:t) AND attnum > 0"),
            {"t": CHECKPOINT_TABLE},
        )
    )
    return [c for c in CHECKPOINTS.c if c.name in names]


def set_paused(conn: Connection, name: str, reason: str | None) -> None:
    """Record why the run waits (None: it works again), for ``data-migration status``."""
    conn.execute(CHECKPOINTS.update().where(CHECKPOINTS.c.name == name).values(paused_reason=reason))


def _running_names(conn: Connection) -> set[int]:
    """The lock ids (name_lock_id) of data migrations running in this database now."""
    return set(
        conn.scalars(
            text(
                "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND objsubid = 2 AND classid::bigint = :c"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"c": ADVISORY_CLASS & 0xFFFFFFFF},
        )
    )


def load_checkpoint(conn: Connection, name: str) -> Any:
    if not checkpoint_table_exists(conn):
        return None
    return conn.execute(select(CHECKPOINTS).where(CHECKPOINTS.c.name == name)).first()


def check_same_migration(row: Any, plan: Plan) -> None:
    """A name stands for one change: running another under it would mix two walks."""
    mine = (plan.table, list(plan.key), plan.set_, plan.where)
    theirs = (row.table_name, list(row.key_columns), row.set_expr, row.where_expr)
    if mine != theirs:
        raise DataMigrationError(
            f"data migration {plan.name!r} already exists for table {row.table_name!r},"
            f" key ({', '.join(row.key_columns)}), SET {row.set_expr!r}, WHERE {row.where_expr!r}",
            "give this migration another --name, or `alp-db data-migration forget` the old one",
        )


@contextmanager
def exclusive(conn: Connection, name: str) -> Iterator[None]:
    """One run per name: a second run of the same migration would update rows twice."""
    obj = name_lock_id(name)
    got = conn.scalar(text("SELECT pg_try_advisory_lock(:c, :o)"), {"c": ADVISORY_CLASS, "o": obj})
    if not got:
        pid = conn.scalar(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2"
                " AND classid::bigint = :c AND objid::bigint = :o"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"c": ADVISORY_CLASS & 0xFFFFFFFF, "o": obj & 0xFFFFFFFF},
        )
        raise DataMigrationError(
            f"data migration {name!r} is already running (backend pid {pid})",
            "wait for it to finish, or stop it; it resumes from its checkpoint",
        )
    try:
        yield
    finally:
        if not conn.invalidated and not conn.closed:
            conn.execute(text("SELECT pg_advisory_unlock(:c, :o)"), {"c": ADVISORY_CLASS, "o": obj})


def forget(
    database_url: str | URL | None = None, name: str = "", *, connection: Connection | None = None
) -> bool:
    """Delete a checkpoint, so that the name can run again from the start. True if it existed."""
    with autocommit_connection(database_url, connection) as conn:
        if not checkpoint_table_exists(conn):
            return False
        with exclusive(conn, name), explicit_transaction(conn):  # never under a running migration
            deleted = conn.execute(CHECKPOINTS.delete().where(CHECKPOINTS.c.name == name)).rowcount
        return bool(deleted)


def status(
    database_url: str | URL | None = None, *, connection: Connection | None = None
) -> list[CheckpointStatus]:
    """Every recorded data migration, most recently active first."""
    with autocommit_connection(database_url, connection) as conn:
        if not checkpoint_table_exists(conn):
            return []
        columns = _present_columns(conn)
        running = _running_names(conn)
        rows = conn.execute(select(*columns).order_by(CHECKPOINTS.c.updated_at.desc(), CHECKPOINTS.c.name))
        return [
            CheckpointStatus(
                name=r.name,
                table=r.table_name,
                key=tuple(r.key_columns),
                last_key=tuple(r.last_key) if r.last_key else None,
                rows_done=r.rows_done,
                rows_walked=r.rows_walked,
                batches=r.batches,
                started_at=r.started_at,
                updated_at=r.updated_at,
                finished_at=r.finished_at,
                running=name_lock_id(r.name) & 0xFFFFFFFF in running,
                paused_reason=getattr(r, "paused_reason", None),
            )
            for r in rows
        ]
