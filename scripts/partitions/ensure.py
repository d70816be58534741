"""``partitions ensure``: create the missing partitions, moving rows the DEFAULT partition
already holds for a new range into them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from scripts.db.durations import duration
from scripts.errors import ConfigError, PartitionOverlap
from scripts.partitions.catalog import PartitionedTable, describe_table, quote_name
from scripts.partitions.defaults import DEFAULT_AHEAD, DEFAULT_LOCK_TIMEOUT, DEFAULT_RETRIES, DEFAULT_TABLE
from scripts.partitions.ensure_plan import infer_interval, plan_ensure
from scripts.partitions.periods import Period, check_interval, parse_date, show, today_utc
from scripts.partitions.steps import pinned_session, run_step, transaction


@dataclass
class EnsureResult:
    table: str
    interval: str
    created: list[Period] = field(default_factory=list)
    moved_rows: dict[str, int] = field(default_factory=dict)
    lock_retries: int = 0
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
    on_retry: Callable[[int], None] | None = None,
) -> EnsureResult:
    """Create every missing partition from ``start`` to ``ahead`` periods past today.

    ``start`` defaults to the earliest row (or today, whichever is earlier). Idempotent: a
    period that already has its partition is skipped. All of it happens in one transaction
    (a savepoint when ``conn`` is already in one, e.g. inside a revision), retried when a lock
    wait times out, so either every partition is there afterwards or nothing changed.
    """
    if interval is not None:
        check_interval(interval)
    if ahead is not None and ahead < 0:
        raise ConfigError(f"--ahead {ahead} is negative", "give the number of periods ahead, 0 or more")
    start_date = parse_date(start, "--start") if start is not None else None
    day = today or today_utc()
    timeout = duration("lock_timeout", lock_timeout or DEFAULT_LOCK_TIMEOUT)

    def once() -> EnsureResult:
        with transaction(conn), pinned_session(conn, timeout):
            return _ensure_in_transaction(conn, table, interval, ahead, start_date, day)

    result, retried = run_step(
        conn, once, retries=retries, what=f"ensure on {table}", lock_timeout=timeout, on_retry=on_retry
    )
    result.lock_retries = retried
    return result


def _ensure_in_transaction(
    conn: Connection, table: str, interval: str | None, ahead: int | None, start: date | None, today: date
) -> EnsureResult:
    # A first plan without locks: the usual run (every partition there) takes none, and the
    # scans of a real run happen before we hold anything a writer could be waiting for.
    info = describe_table(conn, table)
    chosen = interval or infer_interval(info)
    periods_ahead = DEFAULT_AHEAD[chosen] if ahead is None else ahead
    plan = plan_ensure(conn, info, chosen, periods_ahead, start, today)
    result = EnsureResult(
        info.name, chosen, checked_from=plan.wanted[0].start, checked_to=plan.wanted[-1].end
    )
    if not plan.todo:
        return result
    _lock_for_attach(conn, info)
    # The plan again under the locks: another ensure may have run, rows may have arrived.
    info = describe_table(conn, table)
    todo = plan_ensure(conn, info, chosen, periods_ahead, start, today).todo
    default = quote_name(conn, info.schema, info.default_partition) if info.default_partition else None
    for period in todo:
        result.moved_rows[period.name] = _create_partition(conn, info, period, default)
        result.created.append(period)
    return result


def _lock_for_attach(conn: Connection, info: PartitionedTable) -> None:
    """Every lock the work needs, one right after the other, before any work.

    Taken back to back, so our waiting happens while we hold little; with lock_timeout below
    deadlock_timeout, a lock cycle with an application transaction ends with *us* backing off
    (and retrying), not with the application's transaction cancelled.
    """
    # SHARE ROW EXCLUSIVE on the parent alone: readers go on; writers wait until we commit.
    # Writers must wait *before* they route a row: an INSERT that routed a row to the DEFAULT
    # partition with the old partition map, then got its lock after our ATTACH, would fail
    # the default's new partition constraint (execPartition.c re-checks it for that reason).
    # The mode also conflicts with itself, so two `ensure` runs take turns.
    conn.execute(
        text(f"LOCK TABLE ONLY {quote_name(conn, info.schema, info.name)} IN SHARE ROW EXCLUSIVE MODE")
    )
    if info.default_partition:
        # ATTACH takes ACCESS EXCLUSIVE on the default partition to scan it; taking it now
        # keeps it still between our move of its rows and that scan.
        default = quote_name(conn, info.schema, info.default_partition)
        conn.execute(text(f"LOCK TABLE ONLY {default} IN ACCESS EXCLUSIVE MODE"))
    # ATTACH clones the parent's foreign keys onto the partition, which takes SHARE ROW
    # EXCLUSIVE on each referenced table (users, items, ...): their writers wait for us too.
    for referenced in _referenced_tables(conn, info):
        conn.execute(text(f"LOCK TABLE ONLY {referenced} IN SHARE ROW EXCLUSIVE MODE"))


def _referenced_tables(conn: Connection, info: PartitionedTable) -> list[str]:
    """The tables the parent's foreign keys point at, quoted, in a stable order."""
    rows = conn.execute(
        text(
            "SELECT DISTINCT n.nspname, c.relname FROM pg_constraint k"
            " JOIN pg_class c ON c.oid = k.confrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE k.conrelid = CAST(:rel AS regclass) AND k.contype = 'f' AND k.conparentid = 0"
            " AND k.confrelid <> k.conrelid ORDER BY 1, 2"
        ),
        {"rel": quote_name(conn, info.schema, info.name)},
    ).all()
    return [quote_name(conn, schema, name) for schema, name in rows]


def _create_partition(conn: Connection, info: PartitionedTable, period: Period, default: str | None) -> int:
    """Create ``period`` as a standalone table, fill it from the default partition, ATTACH it.

    Why not ``CREATE TABLE ... PARTITION OF``: that takes ACCESS EXCLUSIVE on the parent (every
    reader waits too), and PostgreSQL refuses it while the default partition holds rows of the
    range. ATTACH PARTITION needs only SHARE UPDATE EXCLUSIVE on the parent ("ALTER TABLE",
    ATTACH PARTITION), and on attach PostgreSQL clones the parent's indexes, foreign keys and
    row triggers onto the table; CHECK and NOT NULL constraints come with LIKE. Filling the
    table *before* it is a partition means the parent's BEFORE INSERT triggers do not fire on
    moved rows: they are history, not new answers (an item since retired must not reject them).
    """
    assert period.start is not None and period.end is not None
    prep = conn.dialect.identifier_preparer
    parent = quote_name(conn, info.schema, info.name)
    new = quote_name(conn, info.schema, period.name)
    key = prep.quote(info.key)
    bounds = {"lo": info.bound_literal(period.start), "hi": info.bound_literal(period.end)}
    conn.execute(
        text(
            f"CREATE TABLE {new} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
            " INCLUDING STORAGE INCLUDING GENERATED)"
        )
    )
    moved = 0
    if default:
        cols = ", ".join(prep.quote(c) for c in info.columns)
        where = f"{key} >= CAST(:lo AS {info.key_type}) AND {key} < CAST(:hi AS {info.key_type})"
        moved = conn.execute(
            text(f"INSERT INTO {new} ({cols}) SELECT {cols} FROM ONLY {default} WHERE {where}"), bounds
        ).rowcount
        if moved:
            with _user_triggers_disabled(conn, info.schema, info.default_partition or ""):
                deleted = conn.execute(text(f"DELETE FROM ONLY {default} WHERE {where}"), bounds).rowcount
            if deleted != moved:  # impossible under our ACCESS EXCLUSIVE lock; never lose a row
                raise PartitionOverlap(f"moved {moved} rows but deleted {deleted} from {default}")
    # Bounds as UTC literals with their offset, spelled as revision 0001 spells them.
    conn.execute(text(f"ALTER TABLE {parent} ATTACH PARTITION {new} FOR VALUES FROM (:lo) TO (:hi)"), bounds)
    return moved


@contextmanager
def _user_triggers_disabled(conn: Connection, schema: str, table: str) -> Iterator[None]:
    """Disable the enabled user triggers of ``table`` around a move of its rows, then restore.

    The rows are not deleted as an event: they move to the new partition in the same
    transaction. The append-only trigger (0003) exists to stop deleting history, so it must not
    fire here. ALTER TABLE ... DISABLE TRIGGER is transactional and the table is held ACCESS
    EXCLUSIVE by us, so no other session ever runs without the trigger. Only triggers enabled
    now are touched, so one a DBA disabled on purpose stays disabled.
    """
    names = list(
        conn.execute(
            text(
                "SELECT t.tgname FROM pg_trigger t WHERE t.tgrelid = CAST(:rel AS regclass)"
                " AND NOT t.tgisinternal AND t.tgenabled <> 'D' ORDER BY t.tgname"
            ),
            {"rel": quote_name(conn, schema, table)},
        ).scalars()
    )
    prep = conn.dialect.identifier_preparer
    target = quote_name(conn, schema, table)
    for name in names:
        conn.execute(text(f"ALTER TABLE {target} DISABLE TRIGGER {prep.quote(name)}"))
    yield
    for name in names:
        conn.execute(text(f"ALTER TABLE {target} ENABLE TRIGGER {prep.quote(name)}"))


# --------------------------------------------------------------------------------------------
# list
