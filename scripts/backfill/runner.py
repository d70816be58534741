"""The online run of a data migration: plan it against the catalog, then walk the key in
batches, one transaction each (its UPDATE and its checkpoint together), or count (dry run)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from scripts.backfill import catalog
from scripts.backfill.autocommit import autocommit_connection, explicit_transaction
from scripts.backfill.checkpoints import (
    CHECKPOINTS,
    check_same_migration,
    ensure_checkpoint_table,
    exclusive,
    load_checkpoint,
)
from scripts.backfill.expressions import check_key_not_assigned, parse_expressions
from scripts.backfill.pacing import BatchSizer
from scripts.backfill.plan import BatchOptions, Plan, check_max_runtime, default_name, parse_key, show_key
from scripts.backfill.progress import Reporter, Silent
from scripts.backfill.sql import Statements, key_params
from scripts.backfill.throttle import Throttle
from scripts.db import sqlstate as states
from scripts.db.engine import connection_lost, first_line
from scripts.db.retry import RetriesExhausted, with_retries
from scripts.errors import ConnectionLost, DataMigrationError, LockTimeout


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
    last_batch_size: int = 0  # the adaptive size reached (or the fixed one)
    pauses: int = 0  # times the run waited for the database's health (throttle.py)
    paused_s: float = 0.0

    @property
    def finished(self) -> bool:
        return self.outcome in ("finished", "already finished")

    def as_dict(self) -> dict[str, Any]:
        data = {**asdict(self), "finished": self.finished}
        data["elapsed_s"] = round(self.elapsed_s, 3)
        data["longest_batch_ms"] = round(self.longest_batch_ms, 1)
        data["paused_s"] = round(self.paused_s, 1)
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
        if self.pauses:
            text_ += f", paused {self.pauses} times ({self.paused_s:.1f}s) for the database's health"
        if self.outcome == "stopped at max runtime":
            text_ += "; run the same command again to resume"
        return text_


def plan_for(
    conn: Connection,
    *,
    table: str,
    set_: str,
    where: str | None = None,
    key: str | Sequence[str] | None = None,
    name: str | None = None,
    options: BatchOptions | None = None,
) -> tuple[Plan, catalog.Relation]:
    """Check everything against the catalog; changes nothing."""
    options = options or BatchOptions()
    expressions = parse_expressions(set_, where)  # before anything of it reaches the server
    set_expr, where_expr = expressions.set_, expressions.where
    table = table.strip()
    relation = catalog.resolve_relation(conn, table)
    key_cols = catalog.resolve_key(conn, relation, table, parse_key(key))
    plan = Plan(
        name=name or default_name(table, set_expr, where_expr, parse_key(key)),
        table=table,
        schema=relation.schema,
        relname=relation.relname,
        key=key_cols,
        set_=set_expr,
        where=where_expr,
        options=options,
        key_has_max=catalog.key_has_max(conn, relation, key_cols),
    )
    check_key_not_assigned(expressions.assigned, key_cols)
    catalog.validate_expressions(conn, plan)
    return plan, relation


def batch_update(
    database_url: str | URL | None = None,
    *,
    table: str,
    set_: str,
    where: str | None = None,
    key: str | Sequence[str] | None = None,
    name: str | None = None,
    dry_run: bool = False,
    max_runtime: float | None = None,
    options: BatchOptions | None = None,
    reporter: Reporter | None = None,
    connection: Connection | None = None,
    **option_values: Any,
) -> BackfillResult:
    """``UPDATE table SET set_ WHERE where`` in key-ordered batches, one commit each.

    ``options`` (or the BatchOptions fields by name: ``batch_size=``, ``sleep=``,
    ``lock_timeout=``, ``max_retries=``) say how the batches run. ``connection``, if given,
    must be in AUTOCOMMIT mode (as inside Alembic's ``autocommit_block()``): each batch runs
    its own BEGIN ... COMMIT on it. ``max_runtime`` is checked after each batch, so a run
    always does at least one.
    """
    options = BatchOptions.of(options, **option_values)
    check_max_runtime(max_runtime)
    url: URL | None = None
    try:
        with autocommit_connection(database_url, connection) as conn:
            url = conn.engine.url
            plan, relation = plan_for(
                conn, table=table, set_=set_, where=where, key=key, name=name, options=options
            )
            if dry_run:
                return _dry_run(conn, plan)
            return _Runner(conn, plan, relation, reporter or Silent(), max_runtime).run()
    except DBAPIError as exc:  # the batch loop says which batch; this covers the steps around it
        if not connection_lost(exc):
            raise
        raise lost(f"data migration {name!r}" if name else f"data migration on {table!r}", exc, url) from None


def lost(
    what: str, exc: BaseException, url: URL | None, last: tuple[str, ...] | None = None
) -> ConnectionLost:
    """The session ended (server restart, failover, pg_terminate_backend): what is kept, and
    that the same command resumes (the batch in flight rolled back with its checkpoint)."""
    where = f" at the batch after key {show_key(last)}" if last is not None else ""
    return ConnectionLost(
        f"{what}: the connection to the database was lost{where} ({first_line(exc, url)})",
        "every batch before it is committed; run the same command again to resume",
    )


def _dry_run(conn: Connection, plan: Plan) -> BackfillResult:
    """Counts what the run would update (after the checkpoint, when resuming); writes nothing."""
    started = time.monotonic()
    row = load_checkpoint(conn, plan.name)
    if row is not None:
        check_same_migration(row, plan)
    last = tuple(row.last_key) if row is not None and row.last_key else None
    sql = Statements(conn.dialect, plan)
    with explicit_transaction(conn, commit=False):
        conn.execute(text("SET TRANSACTION READ ONLY"))
        matching, walked = conn.execute(sql.count(first=last is None), key_params("lo", last)).one()
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


# How a person names the races scripts.db.sqlstate.RETRYABLE retries (else its condition name).
_RACE_WORDS = {
    states.LOCK_NOT_AVAILABLE: "lock timeout",
    states.DEADLOCK_DETECTED: "deadlock",
    states.SERIALIZATION_FAILURE: "serialization failure",
}


def _race(exc: BaseException) -> str:
    code = states.sqlstate(exc)
    return _RACE_WORDS.get(code or "", states.describe(code))


Step = tuple[tuple[str, ...], int, int]  # last key of the batch, keys walked, rows updated


class _Runner:
    def __init__(
        self,
        conn: Connection,
        plan: Plan,
        relation: catalog.Relation,
        reporter: Reporter,
        max_runtime: float | None,
    ) -> None:
        self.conn = conn
        self.plan = plan
        self.relation = relation
        self.reporter = reporter
        self.max_runtime = max_runtime
        self.sql = Statements(conn.dialect, plan)
        self.cp = CHECKPOINTS.c

    def run(self) -> BackfillResult:
        conn, plan = self.conn, self.plan
        ensure_checkpoint_table(conn)
        with exclusive(conn, plan.name):
            with explicit_transaction(conn):
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
            check_same_migration(row, plan)
            return self._walk(row)

    def _walk(self, row: Any) -> BackfillResult:
        plan, options = self.plan, self.plan.options
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
        sizer = BatchSizer(
            size=options.first_batch_size,
            adaptive=options.adaptive,
            target_s=options.target_batch_ms / 1000,
            min_size=options.min_batch_size,
            max_size=options.max_batch_size,
        )
        throttle = Throttle(
            self.conn, plan.name, plan.table, self.relation.oid, options.health, self.reporter
        )
        deadline = started + self.max_runtime if self.max_runtime is not None else None
        while not outcome:
            if not throttle.wait(deadline):
                outcome = "stopped at max runtime"
                break
            batch_started = time.perf_counter()
            try:
                step, retried = with_retries(
                    partial(self._batch, last, sizer.size),
                    retries=options.max_retries,
                    backoff=options.backoff,
                    on_retry=partial(self._report_retry, last),
                )
            except RetriesExhausted as exc:
                raise self._exhausted(exc, last) from None
            except DBAPIError as exc:
                if connection_lost(exc):
                    raise lost(f"data migration {plan.name!r}", exc, self.conn.engine.url, last) from None
                raise self._failure(exc, last) from None
            totals["retries"] += retried
            took = time.perf_counter() - batch_started
            longest = max(longest, took)
            if step is None:
                outcome = "finished"
                break
            last, walked, updated = step
            if not retried:  # a batch that waited for locks says nothing about its own cost
                sizer.observe(took, walked)
            totals["walked"] += walked
            totals["updated"] += updated
            totals["batches"] += 1
            self.reporter.batch(walked=walked, updated=updated)
            if self.max_runtime is not None and time.monotonic() - started >= self.max_runtime:
                outcome = "stopped at max runtime"
                break
            if options.sleep:
                time.sleep(options.sleep)
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
            last_batch_size=sizer.size,
            pauses=throttle.pauses,
            paused_s=throttle.paused_s,
        )
        if outcome != "already finished":
            self.reporter.finish(result.summary())
        return result

    def _batch(self, last: tuple[str, ...] | None, size: int) -> Step | None:
        """One key range: find its end, update it, move the checkpoint — one transaction."""
        conn, sql, plan = self.conn, self.sql, self.plan
        params: dict[str, Any] = {
            **key_params("lo", last),
            "batch_size": size,
            "lock_timeout": plan.options.lock_timeout,
            "name": plan.name,
        }
        with explicit_transaction(conn, begun=True):
            conn.execute(sql.begin_batch(), params)
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

    def _report_retry(self, last: tuple[str, ...] | None, attempt: int, exc: BaseException) -> None:
        self.reporter.retry(
            f"batch after key {show_key(last)} hit a {_race(exc)};"
            f" retry {attempt} of {self.plan.options.max_retries}"
        )

    def _exhausted(self, exc: RetriesExhausted, last: tuple[str, ...] | None) -> LockTimeout:
        return LockTimeout(
            f"data migration {self.plan.name!r}: the batch after key {show_key(last)}"
            f" hit a {_race(exc.last)} {exc.attempts} times"
            f" (lock_timeout {self.plan.options.lock_timeout})",
            "find the blocker in pg_locks / pg_stat_activity, then run again with the same name to resume",
        )

    def _failure(self, exc: DBAPIError, last: tuple[str, ...] | None) -> DataMigrationError:
        return DataMigrationError(
            f"data migration {self.plan.name!r}: the batch after key {show_key(last)} failed:"
            f" {first_line(exc, self.conn.engine.url)}",
            "earlier batches are committed; fix the cause and run again with the same name to resume",
        )
