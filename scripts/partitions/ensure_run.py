"""``partitions ensure``: create the missing partitions, moving rows the DEFAULT partition
already holds for a new range into them, in short steps (see ``scripts.partitions.move`` for
each step and the locks it takes), so the platform's writes never wait for the whole move."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import Connection

from scripts.db.durations import duration
from scripts.errors import ConfigError, PartitionError
from scripts.partitions import move, steps
from scripts.partitions.catalog import PartitionedTable, describe_table, quote_name
from scripts.partitions.defaults import (
    DEFAULT_AHEAD,
    DEFAULT_BATCH_ROWS,
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_PAUSE_RATIO,
    DEFAULT_RETRIES,
    DEFAULT_TABLE,
)
from scripts.partitions.ensure_plan import EnsurePlan, infer_interval, plan_ensure
from scripts.partitions.period_math import Period, check_interval, parse_date, show, today_utc
from scripts.partitions.steps import pinned_session, run_step, transaction

T = TypeVar("T")


@dataclass
class EnsureResult:
    table: str
    interval: str
    created: list[Period] = field(default_factory=list)
    moved_rows: dict[str, int] = field(default_factory=dict)
    lock_retries: int = 0
    batches: int = 0  # short transactions that moved rows out of the default partition
    resumed: list[str] = field(default_factory=list)  # tables an interrupted run had left
    # the span checked: from the first period's start to the last period's end
    checked_from: datetime | None = None
    checked_to: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "interval": self.interval,
            "checked_from": show(self.checked_from, ""),
            "checked_to": show(self.checked_to, ""),
            "created": [{**p.as_json(), "moved_rows": self.moved_rows.get(p.name, 0)} for p in self.created],
            "lock_retries": self.lock_retries,
            "batches": self.batches,
            "resumed": self.resumed,
        }


def ensure(
    conn: Connection,
    table: str = DEFAULT_TABLE,
    *,
    interval: str | None = None,
    ahead: int | None = None,
    start: str | date | None = None,
    today: date | None = None,
    lock_timeout: str | None = None,
    retries: int = DEFAULT_RETRIES,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    pause_ratio: float = DEFAULT_PAUSE_RATIO,
    on_retry: Callable[[int], None] | None = None,
    on_batch: Callable[[str, int], None] | None = None,
) -> EnsureResult:
    """Create every missing partition from ``start`` to ``ahead`` periods past today.

    ``start`` defaults to the earliest row (or today, whichever is earlier). Idempotent: a
    period that already has its partition is skipped, and a table an interrupted run left
    unattached is finished. Each step is its own short transaction with ``lock_timeout`` and
    retries; ``on_batch(partition, rows moved so far)`` follows each committed batch. Called
    inside a transaction (a revision), every step is a savepoint of it instead, so its locks
    are held until the caller commits, and a failure leaves nothing once the caller rolls back.
    """
    if interval is not None:
        check_interval(interval)
    if ahead is not None and ahead < 0:
        raise ConfigError(f"--ahead {ahead} is negative", "give the number of periods ahead, 0 or more")
    if batch_rows < 1:
        raise ConfigError(f"batch size {batch_rows} is not positive", "give the rows per batch, e.g. 5000")
    if pause_ratio < 0:
        raise ConfigError(f"pause ratio {pause_ratio:g} is negative", "give 0 (no pause) or more, e.g. 1")
    start_date = parse_date(start, "--start") if start is not None else None
    day = today or today_utc()
    timeout = duration("lock_timeout", lock_timeout or DEFAULT_LOCK_TIMEOUT)
    run = _Run(conn, timeout, retries, on_retry, pause_ratio)

    def planned() -> tuple[PartitionedTable, str, EnsurePlan]:
        info = describe_table(conn, table)
        chosen = interval or infer_interval(info)
        periods_ahead = DEFAULT_AHEAD[chosen] if ahead is None else ahead
        return info, chosen, plan_ensure(conn, info, chosen, periods_ahead, start_date, day)

    info, chosen, plan = run.step(planned, f"ensure on {table}")
    result = EnsureResult(
        info.name, chosen, checked_from=plan.wanted[0].start, checked_to=plan.wanted[-1].end
    )
    for period in plan.todo:
        _create_partition(run, info, period, period.name in plan.resume, batch_rows, result, on_batch)
        result.created.append(period)
    result.lock_retries = run.retried
    return result


class _Run:
    """The connection and lock policy every step of one ``ensure`` shares, and what it left."""

    def __init__(
        self,
        conn: Connection,
        timeout: str,
        retries: int,
        on_retry: Callable[[int], None] | None,
        pause_ratio: float,
    ) -> None:
        self.conn, self.timeout, self.retries, self.on_retry = conn, timeout, retries, on_retry
        self.pause_ratio = pause_ratio
        self.retried = 0
        self.left = steps.NOTHING_KEPT

    def step(self, fn: Callable[[], T], what: str) -> T:
        """``fn`` as one transaction of its own (a savepoint inside the caller's), UTC, with
        the bounded lock wait; retried on a lost lock race."""

        def once() -> T:
            with transaction(self.conn), pinned_session(self.conn, self.timeout):
                return fn()

        value, retried = run_step(
            self.conn,
            once,
            what=what,
            lock_timeout=self.timeout,
            retries=self.retries,
            on_retry=self.on_retry,
            left=self.left,
        )
        self.retried += retried
        return value

    def vacuum(self, info: PartitionedTable, what: str) -> None:
        """VACUUM the DEFAULT partition after the batches emptied part of it.

        The ATTACH step scans the DEFAULT partition while it holds the platform's writers
        (scripts.partitions.move.attach): without this, that scan reads every page the moved
        rows left dead, so the step would grow with the rows moved. VACUUM takes SHARE UPDATE
        EXCLUSIVE, which blocks no reader or writer; ``TRUNCATE false`` skips the truncation
        that would need ACCESS EXCLUSIVE ("VACUUM" in the PostgreSQL docs). It cannot run in a
        transaction block, so a revision's ``ensure`` (one transaction) goes without it.
        """
        assert info.default_partition is not None
        conn = self.conn
        default = quote_name(conn, info.schema, info.default_partition)

        def once() -> None:
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            try:
                auto.execute(text("SELECT set_config('lock_timeout', :lt, false)"), {"lt": self.timeout})
                auto.execute(text(f"VACUUM (TRUNCATE false) {default}"))
            finally:
                if not conn.invalidated:  # a lost connection has no session settings to reset
                    auto.execute(text("RESET lock_timeout"))
                    auto.commit()  # ends SQLAlchemy's autobegun (server-side empty) transaction
                    conn.execution_options(isolation_level=conn.default_isolation_level)

        _, retried = run_step(
            conn, once, what=what, lock_timeout=self.timeout, retries=self.retries,
            on_retry=self.on_retry, left=self.left,
        )  # fmt: skip
        self.retried += retried


def _create_partition(
    run: _Run,
    info: PartitionedTable,
    period: Period,
    resume: bool,
    batch_rows: int,
    result: EnsureResult,
    on_batch: Callable[[str, int], None] | None,
) -> None:
    """Create ``period`` as a standalone table, fill it from the default partition in batches,
    give it the parent's foreign keys, then ATTACH it in one short step (scripts.partitions.move).

    Why not ``CREATE TABLE ... PARTITION OF``: that takes ACCESS EXCLUSIVE on the parent (every
    reader waits too), and PostgreSQL refuses it while the default partition holds rows of the
    range. Filling the table *before* it is a partition means the parent's BEFORE INSERT
    triggers do not fire on moved rows: they are history, not new answers (an item since
    retired must not reject them).
    """
    conn = run.conn
    what = f"ensure of {period.name}"
    if resume:
        moved = run.step(lambda: move.rows_in(conn, info, period), what)
        result.resumed.append(period.name)
    else:
        run.step(lambda: move.create_table(conn, info, period), what)
        moved = 0
    assert period.start is not None
    rerun = (
        f"`alp-db partitions ensure --table {info.name} --interval {result.interval}"
        f" --start {period.start:%Y-%m-%d}`"
    )

    def leave() -> None:
        if moved:
            run.left = (
                f"{period.name} exists, not yet a partition of {info.name}, holding {moved} row(s) moved"
                f" out of {info.default_partition} that queries on {info.name} do not see until it is"
                f" attached; run {rerun} again to finish"
            )
        else:
            run.left = f"{period.name} exists (empty, not yet a partition); run {rerun} again to finish"

    leave()
    if info.default_partition:
        while run.step(lambda: move.default_has_rows(conn, info, period), what):
            began = time.monotonic()
            moved += run.step(lambda: move.move_batch(conn, info, period, batch_rows), f"{what}: a batch")
            if run.pause_ratio and not conn.in_transaction():
                # Each batch writes its rows, their index entries and the deletes to the WAL in
                # one burst, and the platform's commits wait behind that flush (IO:WALSync):
                # pausing as long as the batch took keeps the move to a share of the WAL's time.
                time.sleep((time.monotonic() - began) * run.pause_ratio)
            result.batches += 1
            leave()
            if on_batch is not None:
                on_batch(period.name, moved)
        held = run.step(lambda: move.rows_in(conn, info, period), what)
        if held != moved:  # only our batches write into the table before it is attached
            raise PartitionError(
                f"{period.name} holds {held} row(s) but {moved} were moved into it", run.left
            )
        if moved and not conn.in_transaction():
            run.vacuum(info, f"{what}: VACUUM {info.default_partition}")
    for name in run.step(lambda: move.add_foreign_keys(conn, info, period), f"{what}: foreign keys"):

        def validate(name: str = name) -> None:
            move.validate_foreign_key(conn, info, period, name)

        run.step(validate, f"{what}: VALIDATE {name}")
    moved += run.step(lambda: move.attach(conn, info, period), f"{what}: ATTACH")
    run.left = steps.NOTHING_KEPT
    result.moved_rows[period.name] = moved
