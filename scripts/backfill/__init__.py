"""Batched data migrations: ``SET ... WHERE ...`` applied in key order, one commit per batch.

The guide's loop (``UPDATE items SET difficulty = difficulty * 1.1 WHERE id IN (SELECT id
FROM items WHERE difficulty < 2.0 LIMIT 1000)``) picks its rows by the predicate, so a row
whose new value still matches is picked again and multiplied again, and a negative
difficulty always matches: the loop never ends (here it ends on the CHECK constraint).

Here each batch is a *key range*: the next ``batch_size`` keys after the last key done
(keyset pagination: ``ORDER BY key LIMIT n`` on the key's unique index, never OFFSET, which
rereads every skipped row), and the UPDATE is bounded by that range, so every row is visited
once whatever SET does to the columns that WHERE reads. Each batch commits together with its
checkpoint row (same transaction), so a killed run resumes after the last committed batch and
never applies a batch twice. A batch sets ``lock_timeout`` for itself and is retried a bounded
number of times when a row it needs is locked by someone else.

Offline (``alembic upgrade --sql``) the same loop is emitted as PL/pgSQL: offline.py.
Progress reporting: progress.py.

Known limits: SET must not change the key columns (refused when it names one); rows inserted
behind the walk (a key lower than the last key done, e.g. a random UUID) after the run
started are not visited.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    MetaData,
    Table,
    Text,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.elements import TextClause

from models.base import NAMING_CONVENTION
from scripts.backfill.progress import Reporter, Silent
from scripts.db.durations import duration
from scripts.db.target import resolve_url
from scripts.db.urls import scrub
from scripts.errors import ConfigError, DataMigrationError, LockTimeout
from scripts.migrations.ownership import CHECKPOINT_TABLE_NAME

# Created by this module on first use (CREATE TABLE IF NOT EXISTS), like migration_history by
# the migration runtime: no revision or model owns it, so schema diffs must not call it drift
# (scripts.migrations.ownership lists it).
CHECKPOINT_TABLE = CHECKPOINT_TABLE_NAME

# 5,000 keys keep a batch of a typical row well under 150 ms on a 2-core machine
# (benchmarks/bench_backfill.py) while the per-batch cost (BEGIN, commit, checkpoint) stays
# a few percent of a single UPDATE's time.
DEFAULT_BATCH_SIZE = 5000
DEFAULT_SLEEP_S = 0.0
# A batch that waits longer than this for a row lock gives up, rolls back and retries later:
# waiting longer would make the application's own writes queue behind it.
DEFAULT_LOCK_TIMEOUT = "2s"
DEFAULT_MAX_RETRIES = 10
RETRY_BACKOFF_S = 0.1
RETRY_BACKOFF_CAP_S = 5.0
# SQLSTATEs after which the same batch is simply tried again (Appendix A, "Error Codes").
RETRYABLE = {
    "55P03": "lock timeout",  # lock_not_available
    "40P01": "deadlock",  # deadlock_detected
    "40001": "serialization failure",  # serialization_failure
}
# Advisory-lock class for "a data migration of this name is running" (two-int form, so it
# can never collide with the migrator's one-bigint lock in scripts/migrations/lock.py).
ADVISORY_CLASS = int.from_bytes(hashlib.sha256(b"alp-db:data-migration").digest()[:4], "big", signed=True)
OFFLINE_DOLLAR_TAG = "$alp_backfill$"

_checkpoint_metadata = MetaData(naming_convention=NAMING_CONVENTION)
CHECKPOINTS = Table(
    CHECKPOINT_TABLE,
    _checkpoint_metadata,
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
)


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackfillResult:
    """What one run did. ``rows_updated`` is this run's; ``rows_done_total`` spans resumed runs."""

    name: str
    table: str
    key: tuple[str, ...]
    dry_run: bool
    outcome: str  # finished | already finished | stopped at max runtime | dry run
    rows_updated: int
    rows_walked: int
    rows_done_total: int
    batches: int
    retries: int
    resumed: bool
    last_key: tuple[str, ...] | None
    elapsed_s: float
    longest_batch_ms: float

    @property
    def finished(self) -> bool:
        return self.outcome in ("finished", "already finished")

    def as_dict(self) -> dict[str, Any]:
        data = {**asdict(self), "finished": self.finished}
        data["elapsed_s"] = round(self.elapsed_s, 3)
        data["longest_batch_ms"] = round(self.longest_batch_ms, 1)
        return data

    def summary(self) -> str:
        if self.dry_run:
            return (
                f"data migration {self.name}: dry run, {self.rows_updated} of {self.rows_walked} rows"
                f" of {self.table} would be updated; nothing was changed"
            )
        text_ = (
            f"data migration {self.name}: {self.outcome}, {self.rows_updated} rows updated in"
            f" {self.batches} batches ({self.rows_done_total} in all), {self.elapsed_s:.1f}s"
        )
        if self.outcome == "stopped at max runtime":
            text_ += "; run the same command again to resume"
        return text_


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

    @property
    def state(self) -> str:
        return "finished" if self.finished_at is not None else "in progress"

    def as_row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "table": self.table,
            "key": ", ".join(self.key),
            "state": self.state,
            "rows_done": self.rows_done,
            "rows_walked": self.rows_walked,
            "batches": self.batches,
            "last_key": ", ".join(self.last_key) if self.last_key else None,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
        }


@dataclass(frozen=True)
class Plan:
    """A validated data migration: table and key as the catalog (or the models) spell them."""

    name: str
    table: str  # as the operator wrote it, stored in the checkpoint
    schema: str | None
    relname: str
    key: tuple[str, ...]
    set_: str
    where: str | None
    batch_size: int
    sleep_s: float
    lock_timeout: str
    max_retries: int
    # a single key column whose type has max() (integers, timestamps, text ... not uuid before
    # PostgreSQL 18): the batch's last key is then an aggregate over the batch, without a sort
    key_has_max: bool = False


# -- inputs -----------------------------------------------------------------------------------


_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


def check_expression(label: str, expr: str | None) -> str | None:
    """One SQL expression: not empty, no ``;`` outside quotes (one statement per batch)."""
    if expr is None:
        return None
    stripped = expr.strip()
    if not stripped:
        raise DataMigrationError(f"{label} is empty", f"give {label} as an SQL expression")
    if ";" in _QUOTED.sub("", stripped):
        raise DataMigrationError(
            f"{label} {stripped!r} holds a ';'",
            f"give {label} as one SQL expression, without a statement separator",
        )
    if OFFLINE_DOLLAR_TAG in stripped:
        raise DataMigrationError(f"{label} holds {OFFLINE_DOLLAR_TAG}", "that tag quotes the offline loop")
    return stripped


_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[(),=\[\]]|[^'\"(),=\[\]\s]+")


def assigned_columns(set_: str) -> set[str]:
    """The columns a SET list assigns (``a = 1, "B" = 2, (c, d) = (3, 4)``), names as stored."""
    targets: set[str] = set()
    parens = brackets = 0
    in_target = True
    for token in _TOKEN.findall(set_):
        if token in "()[]":
            parens += {"(": 1, ")": -1}.get(token, 0)
            brackets += {"[": 1, "]": -1}.get(token, 0)
        elif token == "=" and parens == 0 and brackets == 0:
            in_target = False
        elif token == "," and parens == 0 and brackets == 0:
            in_target = True
        elif in_target and token != "," and brackets == 0 and parens <= 1:
            name = token.split(".")[0]  # "col.field" assigns col
            targets.add(name[1:-1].replace('""', '"') if name.startswith('"') else name.lower())
    return targets


def check_key_not_assigned(set_: str, key: tuple[str, ...]) -> None:
    moved = sorted(assigned_columns(set_) & set(key))
    if moved:
        raise DataMigrationError(
            f"SET assigns the key column {', '.join(moved)}:"
            " the walk by that key would meet the moved rows again",
            "walk by another unique key (--key), or change the key in a separate step",
        )


def split_table(table: str) -> tuple[str | None, str]:
    schema, dot, relname = table.strip().rpartition(".")
    if not relname:
        raise DataMigrationError(f"table name {table!r} is empty", "give a table name, e.g. items")
    return (schema or None) if dot else None, relname


def parse_key(key: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if key is None:
        return None
    parts = key.split(",") if isinstance(key, str) else list(key)
    cols = tuple(p.strip() for p in parts if p.strip())
    if not cols:
        raise DataMigrationError("the key is empty", "give a column, or columns separated by commas")
    return cols


def default_name(table: str, set_: str, where: str | None, key: Sequence[str] | None) -> str:
    """The same migration gets the same name, so running the same command again resumes it."""
    digest = hashlib.sha256("\0".join([table, set_, where or "", ",".join(key or ())]).encode())
    return f"{table}_{digest.hexdigest()[:10]}"


def check_options(batch_size: int, sleep: float, max_retries: int, max_runtime: float | None) -> None:
    if batch_size < 1:
        raise ConfigError(f"batch size {batch_size} is not positive", "use --batch-size 1 or more")
    if sleep < 0:
        raise ConfigError(f"sleep {sleep} is negative", "use --sleep 0 or more seconds")
    if max_retries < 0:
        raise ConfigError(f"max retries {max_retries} is negative", "use 0 or more")
    if max_runtime is not None and max_runtime < 0:
        raise ConfigError(f"max runtime {max_runtime} is negative", "use --max-runtime 0 or more seconds")


# -- the catalog ------------------------------------------------------------------------------

# Unique btree indexes without predicate or expression whose key columns are all NOT NULL:
# the keys that give a total order to walk by. Primary key first.
_USABLE_KEYS = text(
    """
    SELECT array_agg(a.attname::text ORDER BY k.ord) AS cols, i.indisprimary
    FROM pg_index i
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
    CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = :oid AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
      AND k.ord <= i.indnkeyatts
    GROUP BY i.indexrelid, i.indisprimary
    HAVING bool_and(a.attnotnull)
    ORDER BY i.indisprimary DESC, count(*), min(ic.relname)
    """
)


@dataclass(frozen=True)
class _Relation:
    oid: int
    schema: str
    relname: str
    estimated_rows: int | None


def _resolve_relation(conn: Connection, table: str) -> _Relation:
    split_table(table)
    try:
        # to_regclass parses the name as SQL does (search_path, quoting) and is NULL when absent
        row = conn.execute(
            text(
                "SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(:name)"
            ),
            {"name": table},
        ).first()
    except DBAPIError:  # a name that is not even a name ("a.b.c.d"); autocommit: nothing left open
        row = None
    if row is None:
        raise DataMigrationError(
            f"table {table!r} does not exist", "check the name (schema.table for another schema)"
        )
    if row.relkind not in ("r", "p"):
        raise DataMigrationError(f"{table!r} is not a table", "a data migration updates a table's rows")
    estimate = conn.scalar(
        text(
            # the table, or the partitions of a partitioned one (-1: never analysed)
            "SELECT sum(greatest(c.reltuples, 0))::bigint FROM pg_class c WHERE c.relkind = 'r'"
            " AND (c.oid = :oid OR c.oid IN (SELECT relid FROM pg_partition_tree(:oid)))"
        ),
        {"oid": row.oid},
    )
    return _Relation(row.oid, row.nspname, row.relname, int(estimate) if estimate else None)


def _resolve_key(
    conn: Connection, relation: _Relation, table: str, key: tuple[str, ...] | None
) -> tuple[str, ...]:
    usable = [tuple(r.cols) for r in conn.execute(_USABLE_KEYS, {"oid": relation.oid})]
    if key is None:
        if not usable:
            raise DataMigrationError(
                f"table {table!r} has no key to walk by"
                " (no primary key, no unique index on NOT NULL columns)",
                "add a primary key, or pass --key with the columns of a unique index on NOT NULL columns",
            )
        return usable[0]
    columns = set(
        conn.scalars(
            text(
                "SELECT attname::text FROM pg_attribute"
                " WHERE attrelid = :oid AND attnum > 0 AND NOT attisdropped"
            ),
            {"oid": relation.oid},
        )
    )
    unknown = [c for c in key if c not in columns]
    if unknown:
        raise DataMigrationError(
            f"table {table!r} has no column {', '.join(map(repr, unknown))}",
            "pass --key with existing column names (the primary key is the default)",
        )
    if key not in usable:
        choices = "; ".join(", ".join(cols) for cols in usable) or "none"
        raise DataMigrationError(
            f"({', '.join(key)}) is not a usable key of {table!r}: no unique index on exactly these"
            " NOT NULL columns in this order",
            f"use one of: {choices}",
        )
    return key


_HAS_MAX = text(
    """
    SELECT EXISTS (
        SELECT 1 FROM pg_aggregate g
        JOIN pg_proc p ON p.oid = g.aggfnoid
        JOIN pg_attribute a ON a.attrelid = :oid AND a.attname = :col
        WHERE p.proname = 'max' AND p.pronamespace = 'pg_catalog'::regnamespace
          AND p.pronargs = 1 AND p.proargtypes[0] = a.atttypid
    )
    """
)


def _key_has_max(conn: Connection, relation: _Relation, key: tuple[str, ...]) -> bool:
    if len(key) != 1:
        return False
    return conn.scalar(_HAS_MAX, {"oid": relation.oid, "col": key[0]}) is True


# -- SQL --------------------------------------------------------------------------------------


def _escape_colons(expr: str) -> str:
    """``text()`` reads ``:name`` as a bind parameter; the operator's SQL has none."""
    return expr.replace(":", r"\:")


class _Statements:
    """The statements of one data migration, identifiers quoted by the dialect's preparer."""

    def __init__(self, conn: Connection, plan: Plan, schema: str | None) -> None:
        q = conn.dialect.identifier_preparer.quote
        self.table = (q(schema) + "." if schema else "") + q(plan.relname)
        self.cols = [q(c) for c in plan.key]
        self.key_list = ", ".join(self.cols)
        self.key_row = f"({self.key_list})"
        self.lo = "(" + ", ".join(f":lo_{i}" for i in range(len(plan.key))) + ")"
        self.hi = "(" + ", ".join(f":hi_{i}" for i in range(len(plan.key))) + ")"
        self.set_ = _escape_colons(plan.set_)
        self.where = _escape_colons(plan.where) if plan.where else None
        self.width = len(plan.key)
        self.key_has_max = plan.key_has_max
        self.checkpoints = q(CHECKPOINT_TABLE)

    def params(self, prefix: str, values: Sequence[str] | None) -> dict[str, str]:
        return {f"{prefix}_{i}": v for i, v in enumerate(values or ())}

    def _after(self, first: bool) -> str:
        return "" if first else f"{self.key_row} > {self.lo}"

    def batch(self, first: bool) -> TextClause:
        """One batch in one round trip: BEGIN, the batch's settings, then one statement that
        finds the end of the next key range, updates the range and moves the checkpoint.

        Round trips, not rows, are what a batch adds to a single UPDATE (each one waits for
        the server to be scheduled), so a batch sends two: this and COMMIT. The range's end
        comes from an InitPlan, which the index scan takes as its bound. psycopg2 sends the
        three statements as one simple query; the rows are the last statement's.
        """
        after = self._after(first)
        batch = (
            f"SELECT {self.key_list} FROM {self.table}"
            + (f" WHERE {after}" if after else "")
            + f" ORDER BY {self.key_list} LIMIT :batch_size"
        )
        hi_cols = [f"_bf_k{i}" for i in range(self.width)]
        if self.key_has_max:
            # an aggregate over the batch: no window to materialise, no sort (4x cheaper)
            hi = f"SELECT max({self.cols[0]}) AS _bf_k0, count(*) AS _bf_n FROM _bf_batch HAVING count(*) > 0"
        else:
            named = ", ".join(f"{c} AS {h}" for c, h in zip(self.cols, hi_cols, strict=True))
            desc = ", ".join(f"{c} DESC" for c in self.cols)
            hi = f"SELECT {named}, count(*) OVER () AS _bf_n FROM _bf_batch ORDER BY {desc} LIMIT 1"
        hi_row = "(" + ", ".join(f"(SELECT {h} FROM _bf_hi)" for h in hi_cols) + ")"
        conditions = [c for c in (after, f"{self.key_row} <= {hi_row}") if c]
        if self.where:
            conditions.append(f"(\n{self.where}\n)")
        # newlines around operator SQL: a trailing ``-- comment`` cannot swallow what follows
        update_range = f"UPDATE {self.table} SET\n{self.set_}\nWHERE " + " AND ".join(conditions)
        hi_text = ", ".join(f"CAST({h} AS text)" for h in hi_cols)
        checkpoint = (
            f"UPDATE {self.checkpoints} SET last_key = (SELECT ARRAY[{hi_text}] FROM _bf_hi),"
            " rows_done = rows_done + (SELECT count(*) FROM _bf_upd),"
            " rows_walked = rows_walked + (SELECT _bf_n FROM _bf_hi),"
            " batches = batches + 1, updated_at = now()"
            " WHERE name = :name AND EXISTS (SELECT FROM _bf_hi) RETURNING 1"
        )
        return text(
            "BEGIN;\n"
            "SELECT set_config('lock_timeout', :lock_timeout, true),"
            " set_config('synchronous_commit', 'off', true);\n"
            f"WITH _bf_batch AS ({batch}),\n_bf_hi AS ({hi}),\n_bf_upd AS ({update_range}\nRETURNING 1),\n"
            f"_bf_cp AS ({checkpoint})\n"
            f"SELECT {hi_text}, _bf_n, (SELECT count(*) FROM _bf_upd), (SELECT count(*) FROM _bf_cp)"
            " FROM _bf_hi"
        )

    def count(self, first: bool) -> TextClause:
        after = self._after(first)
        matching = f"count(*) FILTER (WHERE (\n{self.where}\n))" if self.where else "count(*)"
        return text(f"SELECT {matching}, count(*) FROM {self.table}" + (f" WHERE {after}" if after else ""))

    def explain_set(self) -> TextClause:
        return text(f"EXPLAIN UPDATE {self.table} SET\n{self.set_}\nWHERE false")

    def explain_where(self) -> TextClause:
        return text(f"EXPLAIN SELECT 1 FROM {self.table} WHERE (\n{self.where}\n)")


# -- transactions on an autocommit connection -------------------------------------------------


@contextmanager
def _transaction(conn: Connection, *, commit: bool = True, begun: bool = False) -> Iterator[None]:
    """BEGIN ... COMMIT on a connection in AUTOCOMMIT mode (the one Alembic's autocommit_block
    hands out, and ours): one explicit transaction per batch. ``begun``: the first statement
    inside sends BEGIN itself (a batch saves the round trip)."""
    if not begun:
        conn.exec_driver_sql("BEGIN")
    try:
        yield
    except BaseException:
        with suppress(DBAPIError):  # if the connection is gone, so is the transaction
            conn.exec_driver_sql("ROLLBACK")
        raise
    conn.exec_driver_sql("COMMIT" if commit else "ROLLBACK")


def _set_lock_timeout(conn: Connection, lock_timeout: str) -> None:
    # is_local => the setting ends with the batch's transaction (SET LOCAL)
    conn.execute(text("SELECT set_config('lock_timeout', :v, true)"), {"v": lock_timeout})


def _first_line(exc: DBAPIError, conn: Connection) -> str:
    message = str(exc.orig or exc).strip().splitlines()
    return scrub(message[0] if message else "failed", conn.engine.url)


def _validate_expressions(conn: Connection, sql: _Statements, plan: Plan) -> None:
    """EXPLAIN (never executed, rolled back): a bad SET or WHERE fails before anything changes."""
    checks = [("SET", plan.set_, sql.explain_set())]
    if plan.where:
        checks.append(("WHERE", plan.where, sql.explain_where()))
    for label, expr, statement in checks:
        try:
            with _transaction(conn, commit=False):
                _set_lock_timeout(conn, plan.lock_timeout)
                conn.execute(statement)
        except DBAPIError as exc:
            raise DataMigrationError(
                f"{label} {expr!r} is not valid for table {plan.table!r}: {_first_line(exc, conn)}",
                f"fix the {label} expression; nothing was changed",
            ) from None


# -- checkpoints ------------------------------------------------------------------------------


def _checkpoint_exists(conn: Connection) -> bool:
    return conn.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": CHECKPOINT_TABLE}) is True


def ensure_checkpoint_table(conn: Connection) -> None:
    conn.execute(CreateTable(CHECKPOINTS, if_not_exists=True))


def _load_checkpoint(conn: Connection, name: str) -> Any:
    if not _checkpoint_exists(conn):
        return None
    return conn.execute(select(CHECKPOINTS).where(CHECKPOINTS.c.name == name)).first()


def _check_same_migration(row: Any, plan: Plan) -> None:
    mine = (plan.table, list(plan.key), plan.set_, plan.where)
    theirs = (row.table_name, list(row.key_columns), row.set_expr, row.where_expr)
    if mine != theirs:
        raise DataMigrationError(
            f"data migration {plan.name!r} already exists for table {row.table_name!r},"
            f" key ({', '.join(row.key_columns)}), SET {row.set_expr!r}, WHERE {row.where_expr!r}",
            "give this migration another --name, or `alp-db data-migration forget` the old one",
        )


@contextmanager
def _exclusive(conn: Connection, name: str) -> Iterator[None]:
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
        if not conn.invalidated:
            conn.execute(text("SELECT pg_advisory_unlock(:c, :o)"), {"c": ADVISORY_CLASS, "o": obj})


def name_lock_id(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big", signed=True)


def forget(
    database_url: str | URL | None = None, name: str = "", *, connection: Connection | None = None
) -> bool:
    """Delete a checkpoint, so that the name can run again from the start. True if it existed."""
    with _autocommit(database_url, connection) as conn:
        if not _checkpoint_exists(conn):
            return False
        with _exclusive(conn, name), _transaction(conn):  # never under a running migration
            deleted = conn.execute(CHECKPOINTS.delete().where(CHECKPOINTS.c.name == name)).rowcount
        return bool(deleted)


def status(
    database_url: str | URL | None = None, *, connection: Connection | None = None
) -> list[CheckpointStatus]:
    """Every recorded data migration, most recently active first."""
    with _autocommit(database_url, connection) as conn:
        if not _checkpoint_exists(conn):
            return []
        rows = conn.execute(select(CHECKPOINTS).order_by(CHECKPOINTS.c.updated_at.desc(), CHECKPOINTS.c.name))
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
            )
            for r in rows
        ]


@contextmanager
def _autocommit(database_url: str | URL | None, connection: Connection | None) -> Iterator[Connection]:
    if connection is not None:
        yield connection
        return
    from scripts.db.engine import connect, make_engine

    engine = make_engine(resolve_url(database_url), isolation_level="AUTOCOMMIT")
    try:
        with connect(engine) as conn:
            yield conn
    finally:
        engine.dispose()


# -- the run ----------------------------------------------------------------------------------


def plan_for(
    conn: Connection,
    *,
    table: str,
    set_: str,
    where: str | None = None,
    key: str | Sequence[str] | None = None,
    name: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sleep: float = DEFAULT_SLEEP_S,
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT,
    max_retries: int = DEFAULT_MAX_RETRIES,
    max_runtime: float | None = None,
) -> tuple[Plan, _Relation]:
    """Check everything against the catalog; changes nothing."""
    check_options(batch_size, sleep, max_retries, max_runtime)
    lock_timeout = duration("lock timeout", lock_timeout)
    set_expr = check_expression("SET", set_)
    where_expr = check_expression("WHERE", where)
    assert set_expr is not None
    table = table.strip()
    relation = _resolve_relation(conn, table)
    key_cols = _resolve_key(conn, relation, table, parse_key(key))
    plan = Plan(
        name=name or default_name(table, set_expr, where_expr, parse_key(key)),
        table=table,
        schema=relation.schema,
        relname=relation.relname,
        key=key_cols,
        set_=set_expr,
        where=where_expr,
        batch_size=batch_size,
        sleep_s=sleep,
        lock_timeout=lock_timeout,
        max_retries=max_retries,
        key_has_max=_key_has_max(conn, relation, key_cols),
    )
    check_key_not_assigned(set_expr, key_cols)
    _validate_expressions(conn, _Statements(conn, plan, plan.schema), plan)
    return plan, relation


def batch_update(
    database_url: str | URL | None = None,
    *,
    table: str,
    set_: str,
    where: str | None = None,
    key: str | Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sleep: float = DEFAULT_SLEEP_S,
    name: str | None = None,
    dry_run: bool = False,
    max_runtime: float | None = None,
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT,
    max_retries: int = DEFAULT_MAX_RETRIES,
    reporter: Reporter | None = None,
    connection: Connection | None = None,
) -> BackfillResult:
    """``UPDATE table SET set_ WHERE where`` in key-ordered batches, one commit each.

    ``connection``, if given, must be in AUTOCOMMIT mode (as inside Alembic's
    ``autocommit_block()``): each batch runs its own BEGIN ... COMMIT on it.
    ``max_runtime`` is checked after each batch, so a run always does at least one.
    """
    with _autocommit(database_url, connection) as conn:
        plan, relation = plan_for(
            conn,
            table=table,
            set_=set_,
            where=where,
            key=key,
            name=name,
            batch_size=batch_size,
            sleep=sleep,
            lock_timeout=lock_timeout,
            max_retries=max_retries,
            max_runtime=max_runtime,
        )
        if dry_run:
            return _dry_run(conn, plan)
        return _Runner(conn, plan, relation, reporter or Silent(), max_runtime).run()


def _dry_run(conn: Connection, plan: Plan) -> BackfillResult:
    """Counts what the run would update (after the checkpoint, when resuming); writes nothing."""
    started = time.monotonic()
    row = _load_checkpoint(conn, plan.name)
    if row is not None:
        _check_same_migration(row, plan)
    last = tuple(row.last_key) if row is not None and row.last_key else None
    sql = _Statements(conn, plan, plan.schema)
    with _transaction(conn, commit=False):
        conn.execute(text("SET TRANSACTION READ ONLY"))
        matching, walked = conn.execute(sql.count(first=last is None), sql.params("lo", last)).one()
    return BackfillResult(
        name=plan.name,
        table=plan.table,
        key=plan.key,
        dry_run=True,
        outcome="dry run",
        rows_updated=matching,
        rows_walked=walked,
        rows_done_total=row.rows_done if row is not None else 0,
        batches=0,
        retries=0,
        resumed=last is not None,
        last_key=last,
        elapsed_s=time.monotonic() - started,
        longest_batch_ms=0.0,
    )


class _Runner:
    def __init__(
        self, conn: Connection, plan: Plan, relation: _Relation, reporter: Reporter, max_runtime: float | None
    ) -> None:
        self.conn = conn
        self.plan = plan
        self.relation = relation
        self.reporter = reporter
        self.max_runtime = max_runtime
        self.sql = _Statements(conn, plan, plan.schema)
        self.cp = CHECKPOINTS.c

    def run(self) -> BackfillResult:
        conn, plan = self.conn, self.plan
        ensure_checkpoint_table(conn)
        with _exclusive(conn, plan.name):
            with _transaction(conn):
                conn.execute(
                    postgresql.insert(CHECKPOINTS)
                    .values(
                        name=plan.name,
                        table_name=plan.table,
                        key_columns=list(plan.key),
                        set_expr=plan.set_,
                        where_expr=plan.where,
                    )
                    .on_conflict_do_nothing(index_elements=["name"])
                )
                row = conn.execute(select(CHECKPOINTS).where(self.cp.name == plan.name)).one()
            _check_same_migration(row, plan)
            return self._walk(row)

    def _walk(self, row: Any) -> BackfillResult:
        plan, conn = self.plan, self.conn
        started = time.monotonic()
        last: tuple[str, ...] | None = tuple(row.last_key) if row.last_key else None
        resumed = row.batches > 0
        totals = {"updated": 0, "walked": 0, "batches": 0, "retries": 0}
        longest = 0.0
        outcome = "already finished" if row.finished_at is not None else ""
        if not outcome:
            self.reporter.start(
                name=plan.name,
                total=self.relation.estimated_rows,
                walked=row.rows_walked,
                updated=row.rows_done,
            )
        attempt = 0
        while not outcome:
            batch_started = time.perf_counter()
            try:
                with _transaction(conn, begun=True):
                    step = self._batch(last)
            except DBAPIError as exc:
                code = getattr(exc.orig, "pgcode", None)
                if code in RETRYABLE and attempt < plan.max_retries:
                    attempt += 1
                    totals["retries"] += 1
                    self.reporter.retry(
                        f"batch after key {_show(last)} hit a {RETRYABLE[code]};"
                        f" retry {attempt} of {plan.max_retries}"
                    )
                    time.sleep(min(RETRY_BACKOFF_S * 2 ** (attempt - 1), RETRY_BACKOFF_CAP_S))
                    continue
                raise self._failure(exc, code, last) from None
            longest = max(longest, time.perf_counter() - batch_started)
            attempt = 0
            if step is None:
                outcome = "finished"
                break
            last, walked, updated = step
            totals["walked"] += walked
            totals["updated"] += updated
            totals["batches"] += 1
            self.reporter.batch(walked=walked, updated=updated)
            if self.max_runtime is not None and time.monotonic() - started >= self.max_runtime:
                outcome = "stopped at max runtime"
                break
            if plan.sleep_s:
                time.sleep(plan.sleep_s)
        result = BackfillResult(
            name=plan.name,
            table=plan.table,
            key=plan.key,
            dry_run=False,
            outcome=outcome,
            rows_updated=totals["updated"],
            rows_walked=totals["walked"],
            rows_done_total=row.rows_done + totals["updated"],
            batches=totals["batches"],
            retries=totals["retries"],
            resumed=resumed,
            last_key=last,
            elapsed_s=time.monotonic() - started,
            longest_batch_ms=longest * 1000,
        )
        if outcome != "already finished":
            self.reporter.finish(result.summary())
        return result

    def _batch(self, last: tuple[str, ...] | None) -> tuple[tuple[str, ...], int, int] | None:
        """One key range: find its end, update it, move the checkpoint — one transaction."""
        conn, sql, plan = self.conn, self.sql, self.plan
        params: dict[str, Any] = {
            **sql.params("lo", last),
            "batch_size": plan.batch_size,
            "lock_timeout": plan.lock_timeout,
            "name": plan.name,
        }
        row = conn.execute(sql.batch(first=last is None), params).first()
        if row is None:
            conn.execute(
                update(CHECKPOINTS)
                .where(self.cp.name == plan.name)
                .values(finished_at=func.now(), updated_at=func.now())
            )
            return None
        hi = tuple(row[: sql.width])
        walked, updated, moved = (int(v) for v in row[sql.width :])
        if moved != 1:  # raising rolls the batch back: no update without its checkpoint
            raise DataMigrationError(
                f"the checkpoint of data migration {plan.name!r} disappeared during the run",
                "it was forgotten while running; run again to start over",
            )
        return hi, walked, updated

    def _failure(self, exc: DBAPIError, code: str | None, last: tuple[str, ...] | None) -> Exception:
        where = f"data migration {self.plan.name!r}: the batch after key {_show(last)}"
        if code in RETRYABLE:
            return LockTimeout(
                f"{where} hit a {RETRYABLE[code]} {self.plan.max_retries + 1} times"
                f" (lock_timeout {self.plan.lock_timeout})",
                "find the blocker in pg_locks / pg_stat_activity,"
                " then run again with the same name to resume",
            )
        return DataMigrationError(
            f"{where} failed: {_first_line(exc, self.conn)}",
            "earlier batches are committed; fix the cause and run again with the same name to resume",
        )


def _show(key: tuple[str, ...] | None) -> str:
    return "(start)" if key is None else "(" + ", ".join(key) + ")"


# -- in a revision ----------------------------------------------------------------------------


def batch_update_in_revision(
    op: Any,
    *,
    table: str,
    set_: str,
    name: str,
    where: str | None = None,
    key: str | Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sleep: float = DEFAULT_SLEEP_S,
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT,
    max_retries: int = DEFAULT_MAX_RETRIES,
) -> BackfillResult | None:
    """A batched data migration inside a revision's ``upgrade()``.

    It runs outside the revision's transaction (``autocommit_block()``: what the revision did
    before is committed first, so its locks are not held for the whole backfill), one commit
    per batch. If it fails, the revision fails and ``alembic upgrade`` resumes it from its
    checkpoint. Offline (``--sql``) it emits the same loop as a PL/pgSQL DO block.
    ``name`` must stay the same for the life of the revision: it is the checkpoint's key.
    """
    from scripts.backfill import offline as backfill_offline
    from scripts.backfill import progress as backfill_progress

    ctx = op.get_context()
    with ctx.autocommit_block():
        if ctx.as_sql:
            plan = backfill_offline.plan(
                table=table,
                set_=set_,
                where=where,
                key=key,
                name=name,
                batch_size=batch_size,
                sleep=sleep,
                lock_timeout=lock_timeout,
                max_retries=max_retries,
            )
            for statement in backfill_offline.statements(plan):
                ctx.impl.static_output(statement)
            return None
        return batch_update(
            table=table,
            set_=set_,
            where=where,
            key=key,
            name=name,
            batch_size=batch_size,
            sleep=sleep,
            lock_timeout=lock_timeout,
            max_retries=max_retries,
            reporter=backfill_progress.for_stream(),
            connection=op.get_bind(),
        )


def forget_in_revision(op: Any, name: str) -> None:
    """For a downgrade: drop the checkpoint, so that upgrading again runs the migration again."""
    ctx = op.get_context()
    if ctx.as_sql:
        op.execute(CreateTable(CHECKPOINTS, if_not_exists=True))
        op.execute(CHECKPOINTS.delete().where(CHECKPOINTS.c.name == name))
        return
    conn = op.get_bind()
    if _checkpoint_exists(conn):
        conn.execute(CHECKPOINTS.delete().where(CHECKPOINTS.c.name == name))
