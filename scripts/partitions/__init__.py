"""Partitions of a table partitioned by RANGE on one time column (``attempts``).

- :func:`ensure` creates the missing yearly (``attempts_YYYY``) or monthly (``attempts_YYYY_MM``)
  partitions, moving rows that the DEFAULT partition already holds for a new range;
- :func:`list_partitions` reports bounds, estimated rows and size, and the default's rows;
- :func:`plan_detach` / :func:`apply_detach` take old partitions out (the plan is what runs);
- :func:`missing_partitions` tells the validator which current/next periods lack a partition;
- :func:`create_partitioned_index_concurrently` builds an index on the table from a revision
  without blocking writes.

Bounds are UTC midnights written with an explicit offset, exactly as revision 0001 writes them
('2025-01-01 00:00:00+00'), so they never depend on the session's TimeZone. The guide's
``FOR VALUES FROM ('2025-01-01')`` means the same bound only in a UTC session: a literal
without offset is read in the session TimeZone ("Date/Time Input" in the PostgreSQL docs).

What each operation locks (all waits bounded by ``lock_timeout``, 500ms by default, retried):

- ``ensure`` with nothing to create: nothing beyond ordinary reads.
- ``ensure`` creating partitions, for its one short transaction: SHARE ROW EXCLUSIVE on the
  parent (reads go on, inserts wait and then succeed), ACCESS EXCLUSIVE on the DEFAULT
  partition (queries that cannot prune it wait), SHARE ROW EXCLUSIVE on the tables the
  foreign keys reference (their writers wait). Moving rows out of the default partition
  lengthens that transaction in proportion to the rows moved.
- ``detach``: DETACH ... CONCURRENTLY (PostgreSQL 14+) where allowed; PostgreSQL refuses it
  while a DEFAULT partition exists, and then a plain DETACH takes ACCESS EXCLUSIVE on the
  parent for a catalog-only change (milliseconds once granted).
- the index helper: SHARE UPDATE EXCLUSIVE per partition while it builds (writes go on).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from scripts.db.durations import duration
from scripts.errors import (
    ConfigError,
    LockTimeout,
    NotPartitioned,
    PartitionError,
    PartitionOverlap,
    PermissionDenied,
    UnknownTable,
)

INTERVALS = ("year", "month")
# How many periods past the current one `ensure` prepares when --ahead is not given.
DEFAULT_AHEAD = {"year": 1, "month": 3}
# A plan larger than this is almost surely a stray row (a clock set to 1970) in the default
# partition, not a wish for hundreds of partitions: refuse it and ask for --start.
MAX_NEW_PARTITIONS = 120
BOUND_TIMEZONE = "UTC"
# Partition key types whose ranges we manage, and how a bound is written for each.
BOUND_FORMATS = {
    "timestamp with time zone": "%Y-%m-%d %H:%M:%S+00",
    "timestamp without time zone": "%Y-%m-%d %H:%M:%S",
    "date": "%Y-%m-%d",
}
INSUFFICIENT_PRIVILEGE = "42501"
LOCK_NOT_AVAILABLE = "55P03"
DEADLOCK_DETECTED = "40P01"
# Lock waits that end in one of these are retried: the other session finishes, we go again.
RETRYABLE_SQLSTATES = frozenset({LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED})
DEFAULT_RETRIES = 5
# Below PostgreSQL's default deadlock_timeout (1s): if our lock wait is part of a cycle with an
# application transaction, we give up (and retry) before its deadlock check can cancel *it*.
DEFAULT_LOCK_TIMEOUT = "500ms"
RETRY_BACKOFF_S = 0.2
# DETACH PARTITION ... CONCURRENTLY appeared in PostgreSQL 14.
CONCURRENT_DETACH_MIN_VERSION = 140000
MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1

_BOUND = re.compile(r"^FOR VALUES FROM \((?P<lo>.+)\) TO \((?P<hi>.+)\)$", re.DOTALL)
_COLUMN_SPEC = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_$]*)(?P<order>\s+(?:ASC|DESC))?(?P<nulls>\s+NULLS\s+(?:FIRST|LAST))?$",
    re.IGNORECASE,
)
_ACCESS_METHOD = re.compile(r"^[a-z_][a-z0-9_]*$")


# --------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class Period:
    """One partition range ``[start, end)``; ``None`` stands for MINVALUE / MAXVALUE."""

    name: str
    start: datetime | None
    end: datetime | None

    def overlaps(self, other: Period) -> bool:
        lo_ok = other.end is None or self.start is None or self.start < other.end
        hi_ok = other.start is None or self.end is None or other.start < self.end
        return lo_ok and hi_ok

    def same_range(self, other: Period) -> bool:
        return self.start == other.start and self.end == other.end

    def describe(self) -> str:
        return f"{self.name} [{_show(self.start, 'MINVALUE')}, {_show(self.end, 'MAXVALUE')})"

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "from": _show(self.start, "MINVALUE"), "to": _show(self.end, "MAXVALUE")}


@dataclass(frozen=True)
class PartitionedTable:
    """What the catalog says about a RANGE-partitioned table and its partitions."""

    schema: str
    name: str
    key: str
    key_type: str
    columns: tuple[str, ...]
    partitions: tuple[Period, ...]  # the range partitions, by lower bound
    default_partition: str | None
    detach_pending: tuple[str, ...] = ()

    def bound_literal(self, value: datetime) -> str:
        return value.strftime(BOUND_FORMATS[self.key_type])


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
            "checked_from": _show(self.checked_from, ""),
            "checked_to": _show(self.checked_to, ""),
            "created": [{**p.as_json(), "moved_rows": self.moved_rows.get(p.name, 0)} for p in self.created],
            "lock_retries": self.lock_retries,
        }


@dataclass(frozen=True)
class PartitionRow:
    name: str
    start: datetime | None
    end: datetime | None
    is_default: bool
    estimated_rows: int | None  # None: never analysed
    size_bytes: int
    size: str

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "from": "DEFAULT" if self.is_default else _show(self.start, "MINVALUE"),
            "to": "" if self.is_default else _show(self.end, "MAXVALUE"),
            "estimated_rows": self.estimated_rows,
            "size_bytes": self.size_bytes,
            "size": self.size,
        }

    def as_row(self) -> dict[str, Any]:
        """For a table people read: UTC midnights as plain dates."""
        row = self.as_json()
        if not self.is_default:
            row["from"], row["to"] = _show_short(self.start, "MINVALUE"), _show_short(self.end, "MAXVALUE")
        return row


@dataclass
class PartitionListing:
    table: str
    partitions: list[PartitionRow]
    default_partition: str | None
    default_rows: int | None  # exact count: any row there means a missing partition
    default_earliest: datetime | None = None
    default_latest: datetime | None = None

    @property
    def warning(self) -> str | None:
        if not self.default_rows:
            return None
        return (
            f"{self.default_rows} row(s) in default partition {self.default_partition}"
            f" ({_show(self.default_earliest, '?')} .. {_show(self.default_latest, '?')}): a partition is"
            f" missing; run `alp-db partitions ensure --table {self.table}"
            f" --start {self.default_earliest:%Y-%m-%d}`"
            if self.default_earliest
            else f"{self.default_rows} row(s) in default partition {self.default_partition}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "partitions": [p.as_json() for p in self.partitions],
            "default_partition": self.default_partition,
            "default_rows": self.default_rows,
            "warning": self.warning,
        }


@dataclass(frozen=True)
class DetachStep:
    statement: str
    # For DETACH ... CONCURRENTLY: the partition (quoted) and the statement that completes
    # the same detach if an interruption left it pending ("ALTER TABLE", DETACH ... FINALIZE).
    partition: str | None = None
    finalize: str | None = None


@dataclass(frozen=True)
class DetachPlan:
    """Exactly the statements :func:`apply_detach` runs, in order; ``--dry-run`` prints them."""

    table: str
    older_than: date
    partitions: tuple[Period, ...]
    drop: bool
    concurrently: bool
    why_not_concurrently: str | None
    steps: tuple[DetachStep, ...]

    @property
    def statements(self) -> tuple[str, ...]:
        return tuple(step.statement for step in self.steps)

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "older_than": self.older_than.isoformat(),
            "partitions": [p.as_json() for p in self.partitions],
            "drop": self.drop,
            "concurrently": self.concurrently,
            "why_not_concurrently": self.why_not_concurrently,
            "statements": list(self.statements),
        }


@dataclass
class DetachResult:
    plan: DetachPlan
    executed: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Dates and periods


def parse_date(value: str | date, what: str = "date") -> date:
    """``YYYY-MM-DD`` (or a date) -> date; anything else is a one-line ConfigError."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(
            f"{what} {value!r} is not a date", "write it as YYYY-MM-DD, e.g. 2025-01-01"
        ) from None


def check_interval(interval: str) -> str:
    if interval not in INTERVALS:
        raise ConfigError(f"interval {interval!r} is not known", f"use one of: {', '.join(INTERVALS)}")
    return interval


def period_start(day: date, interval: str) -> datetime:
    month = 1 if interval == "year" else day.month
    return datetime(day.year, month, 1, tzinfo=timezone.utc)


def advance(start: datetime, interval: str, steps: int = 1) -> datetime:
    if interval == "year":
        return start.replace(year=start.year + steps)
    months = start.year * 12 + (start.month - 1) + steps
    return start.replace(year=months // 12, month=months % 12 + 1)


def period_name(table: str, start: datetime, interval: str) -> str:
    """``attempts_2025`` or ``attempts_2025_01``: the guide's naming."""
    suffix = f"{start:%Y}" if interval == "year" else f"{start:%Y_%m}"
    return f"{table}_{suffix}"


def periods(table: str, first: date, last: date, interval: str) -> list[Period]:
    """Every period from the one holding ``first`` to the one holding ``last``, inclusive."""
    out: list[Period] = []
    start, stop = period_start(first, interval), period_start(last, interval)
    while start <= stop:
        end = advance(start, interval)
        out.append(Period(period_name(table, start, interval), start, end))
        start = end
    return out


def _show(value: datetime | None, none: str) -> str:
    return none if value is None else value.strftime("%Y-%m-%d %H:%M:%S+00")


def _show_short(value: datetime | None, none: str) -> str:
    if value is not None and value.time() == datetime.min.time():
        return value.strftime("%Y-%m-%d")
    return _show(value, none)


def _today() -> date:
    return datetime.now(timezone.utc).date()


# --------------------------------------------------------------------------------------------
# Catalog


def quote_name(conn: Connection, schema: str, name: str) -> str:
    prep = conn.dialect.identifier_preparer
    return f"{prep.quote_schema(schema)}.{prep.quote(name)}"


def describe_table(conn: Connection, table: str) -> PartitionedTable:
    """Read the table's partitioning from the catalog; clear errors for anything else."""
    schema, _, bare = table.rpartition(".")
    row = conn.execute(
        text(
            "SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relname = :name AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
            " AND (CASE WHEN :schema = '' THEN pg_table_is_visible(c.oid) ELSE n.nspname = :schema END)"
        ),
        {"name": bare, "schema": schema},
    ).first()
    if row is None:
        raise UnknownTable(f"table {table!r} does not exist", "check the name (e.g. --table attempts)")
    oid, nspname, relname, relkind = row
    key = conn.execute(
        text(
            "SELECT p.partstrat, p.partnatts, a.attname, format_type(a.atttypid, a.atttypmod)"
            " FROM pg_partitioned_table p"
            " LEFT JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
            " WHERE p.partrelid = :oid"
        ),
        {"oid": oid},
    ).first()
    if relkind != "p" or key is None:
        raise NotPartitioned(
            f"table {relname!r} is not partitioned",
            "partitions are managed only for tables declared PARTITION BY RANGE (time column)",
        )
    strategy, natts, key_name, key_type = key
    if strategy != "r" or natts != 1 or key_name is None or key_type not in BOUND_FORMATS:
        raise NotPartitioned(
            f"table {relname!r} is not partitioned by RANGE on one date/timestamp column",
            "partitions are managed only for PARTITION BY RANGE (a date or timestamp column)",
        )
    columns = tuple(
        conn.execute(
            text(
                "SELECT attname FROM pg_attribute WHERE attrelid = :oid AND attnum > 0"
                " AND NOT attisdropped ORDER BY attnum"
            ),
            {"oid": oid},
        ).scalars()
    )
    pending_col = "i.inhdetachpending" if server_version(conn) >= CONCURRENT_DETACH_MIN_VERSION else "false"
    rows = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), "
            + pending_col
            + " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = :oid"
        ),
        {"oid": oid},
    ).all()
    ranges: list[Period] = []
    default: str | None = None
    pending: list[str] = []
    for name, bound, is_pending in rows:
        if is_pending:
            pending.append(name)
        if bound == "DEFAULT":
            default = name
            continue
        ranges.append(_parse_bound(name, bound))
    ranges.sort(key=lambda p: (p.start is not None, p.start or datetime.min.replace(tzinfo=timezone.utc)))
    return PartitionedTable(
        nspname, relname, key_name, key_type, columns, tuple(ranges), default, tuple(pending)
    )


def _parse_bound(name: str, bound: str) -> Period:
    match = _BOUND.match(bound)
    if not match:
        raise NotPartitioned(
            f"partition {name!r} has an unreadable bound: {bound}", "is the key a range key?"
        )
    return Period(name, _parse_value(match["lo"]), _parse_value(match["hi"]))


def _parse_value(raw: str) -> datetime | None:
    """A bound as pg_get_expr prints it, read in the UTC session that we pin."""
    raw = raw.strip()
    if raw in ("MINVALUE", "MAXVALUE", "'-infinity'", "'infinity'"):
        return None
    value = raw.strip("'")
    value = re.sub(r"([+-]\d\d)$", r"\1:00", value)  # '+00' -> '+00:00' for fromisoformat
    parsed = datetime.fromisoformat(value)
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def server_version(conn: Connection) -> int:
    return int(conn.execute(text("SELECT current_setting('server_version_num')")).scalar_one())


@contextmanager
def _pinned_session(conn: Connection, lock_timeout: str | None) -> Iterator[None]:
    """UTC (so bounds print as UTC) and a bounded lock wait, for our transaction only.

    Inside a caller's transaction (a savepoint, e.g. in a revision) SET LOCAL would outlive
    us, so the caller's values are put back afterwards; a failed savepoint undoes them itself.
    """
    settings = {"TimeZone": BOUND_TIMEZONE}
    if lock_timeout is not None:
        settings["lock_timeout"] = lock_timeout
    saved = {
        name: conn.execute(text("SELECT current_setting(:n)"), {"n": name}).scalar_one() for name in settings
    }
    for name, value in settings.items():
        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})
    yield
    for name, value in saved.items():
        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})


@contextmanager
def _transaction(conn: Connection) -> Iterator[None]:
    """Our own transaction, or a savepoint inside the caller's (a revision's)."""
    with conn.begin_nested() if conn.in_transaction() else conn.begin():
        yield


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "pgcode", None)


def _describe_failure(exc: DBAPIError, what: str) -> PartitionError | PermissionDenied:
    """One line for a statement the server refused (our transaction was rolled back)."""
    detail = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc).strip() else "failed"
    if _sqlstate(exc) == INSUFFICIENT_PRIVILEGE:
        return PermissionDenied(f"{what}: {detail}", "run it as the table's owner")
    return PartitionError(
        f"{what} failed: {detail}", "nothing of that step was kept; see `alp-db partitions list`, then retry"
    )


def _with_retries(
    fn: Callable[[], Any],
    *,
    retries: int,
    what: str,
    lock_timeout: str,
    on_retry: Callable[[int], None] | None = None,
) -> tuple[Any, int]:
    """Run ``fn`` (one transaction) again when it lost a lock wait; give up with LockTimeout."""
    for attempt in range(retries + 1):
        try:
            return fn(), attempt
        except DBAPIError as exc:
            if _sqlstate(exc) not in RETRYABLE_SQLSTATES:
                raise _describe_failure(exc, what) from exc
            if attempt == retries:
                raise LockTimeout(
                    f"lock timeout: {what} waited {lock_timeout} for a lock {retries + 1} times;"
                    " another session holds it",
                    "find it in pg_stat_activity / pg_locks, then retry, or raise --lock-timeout",
                ) from None
            if on_retry is not None:
                on_retry(attempt + 1)
            time.sleep(RETRY_BACKOFF_S * 2**attempt)
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------
# ensure


def infer_interval(info: PartitionedTable) -> str:
    """The shape of the latest finite partition; yearly when there is none."""
    for part in reversed(info.partitions):
        shape = period_shape(part)
        if shape:
            return shape
    return "year"


def earliest_row(conn: Connection, info: PartitionedTable) -> date | None:
    """The earliest row's date, cheaply: rows in range partitions lie at or after the lower
    bound of the first non-empty one, so only the DEFAULT partition is scanned (it is small,
    or a partition is missing)."""
    candidates: list[datetime] = []
    for part in info.partitions:
        exists = conn.execute(
            text(f"SELECT EXISTS (SELECT 1 FROM ONLY {quote_name(conn, info.schema, part.name)})")
        ).scalar_one()
        if exists:
            if part.start is not None:
                candidates.append(part.start)
            break
    if info.default_partition:
        key = conn.dialect.identifier_preparer.quote(info.key)
        found = conn.execute(
            text(f"SELECT min({key}) FROM ONLY {quote_name(conn, info.schema, info.default_partition)}")
        ).scalar_one()
        if found is not None:
            found = found if isinstance(found, datetime) else datetime(found.year, found.month, found.day)
            candidates.append(found if found.tzinfo else found.replace(tzinfo=timezone.utc))
    return min(candidates).astimezone(timezone.utc).date() if candidates else None


def plan_ensure(
    conn: Connection,
    info: PartitionedTable,
    interval: str,
    ahead: int,
    start: date | None,
    today: date,
) -> EnsurePlan:
    """The periods to create; raises (before any change) on overlap or a name already taken."""
    first = start if start is not None else min(earliest_row(conn, info) or today, today)
    last = advance(period_start(max(first, today), interval), interval, ahead).date()
    wanted = periods(info.name, first, last, interval)
    if len(wanted) > MAX_NEW_PARTITIONS:
        raise ConfigError(
            f"ensure would span {len(wanted)} {interval} partitions from {first} (over {MAX_NEW_PARTITIONS})",
            "pass --start to begin later, or look for stray rows in the default partition",
        )
    todo: list[Period] = []
    for period in wanted:
        if any(existing.same_range(period) for existing in info.partitions):
            continue
        clash = next((e for e in info.partitions if e.overlaps(period)), None)
        if clash is not None:
            shape = period_shape(clash)
            raise PartitionOverlap(
                f"cannot create {period.describe()}: it overlaps existing partition {clash.describe()}"
                " of another shape",
                f"use --interval {shape} or a --start after the existing ranges"
                if shape
                else "its bounds are not UTC period boundaries (created in a non-UTC session?);"
                " recreate it with bounds like '2025-01-01 00:00:00+00'",
            )
        taken = conn.execute(
            text(
                "SELECT c.relkind FROM pg_class c"
                " WHERE c.relname = :n AND c.relnamespace = CAST(:s AS regnamespace)"
            ),
            {"n": period.name, "s": conn.dialect.identifier_preparer.quote_schema(info.schema)},
        ).first()
        if taken is not None:
            raise PartitionOverlap(
                f"cannot create {period.name}: a relation of that name exists and is not a partition of"
                f" {info.name}",
                "rename or drop it, then run ensure again",
            )
        todo.append(period)
    return EnsurePlan(wanted, todo)


@dataclass(frozen=True)
class EnsurePlan:
    wanted: list[Period]  # every period from the start to the horizon
    todo: list[Period]  # those without their partition


def period_shape(part: Period) -> str | None:
    """``year`` or ``month`` when ``part`` spans exactly one such UTC period, else None."""
    if part.start is None or part.end is None:
        return None
    for interval in INTERVALS:
        if (
            part.start == period_start(part.start.date(), interval)
            and advance(part.start, interval) == part.end
        ):
            return interval
    return None


def ensure(
    conn: Connection,
    table: str = "attempts",
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
    day = today or _today()
    timeout = duration("lock_timeout", lock_timeout or DEFAULT_LOCK_TIMEOUT)

    def once() -> EnsureResult:
        with _transaction(conn), _pinned_session(conn, timeout):
            return _ensure_in_transaction(conn, table, interval, ahead, start_date, day)

    result, retried = _with_retries(
        once, retries=retries, what=f"ensure on {table}", lock_timeout=timeout, on_retry=on_retry
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


def list_partitions(conn: Connection, table: str = "attempts") -> PartitionListing:
    with _transaction(conn), _pinned_session(conn, None):
        info = describe_table(conn, table)
        stats = {
            name: (tuples, size, pretty)
            for name, tuples, size, pretty in conn.execute(
                text(
                    "SELECT c.relname, c.reltuples, pg_total_relation_size(c.oid),"
                    " pg_size_pretty(pg_total_relation_size(c.oid))"
                    " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = CAST(:rel AS regclass)"
                ),
                {"rel": quote_name(conn, info.schema, info.name)},
            )
        }

        def row(name: str, start: datetime | None, end: datetime | None, is_default: bool) -> PartitionRow:
            tuples, size, pretty = stats[name]
            # reltuples is -1 on PostgreSQL 14+ (0 before) until the first VACUUM/ANALYZE
            estimated = None if tuples is None or tuples < 0 else round(tuples)
            return PartitionRow(name, start, end, is_default, estimated, int(size), str(pretty))

        rows = [row(p.name, p.start, p.end, False) for p in info.partitions]
        listing = PartitionListing(info.name, rows, info.default_partition, None)
        if info.default_partition:
            rows.append(row(info.default_partition, None, None, True))
            key = conn.dialect.identifier_preparer.quote(info.key)
            count, lo, hi = conn.execute(
                text(
                    f"SELECT count(*), min({key}), max({key})"
                    f" FROM ONLY {quote_name(conn, info.schema, info.default_partition)}"
                )
            ).one()
            listing.default_rows = int(count)
            listing.default_earliest, listing.default_latest = _as_utc(lo), _as_utc(hi)
        return listing


def _as_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


# --------------------------------------------------------------------------------------------
# missing partitions (for the validator)


def missing_partitions(
    conn: Connection, table: str = "attempts", interval: str | None = None, at: date | None = None
) -> list[Period]:
    """The current and next period (at ``at``, default today) not wholly covered by partitions.

    A row of such a period would land in the DEFAULT partition (or fail without one). Coverage
    counts any range partitions, so a month inside an existing yearly partition is covered.
    """
    day = at or _today()
    with _transaction(conn), _pinned_session(conn, None):
        info = describe_table(conn, table)
    chosen = check_interval(interval) if interval else infer_interval(info)
    current = period_start(day, chosen)
    wanted = periods(info.name, current.date(), advance(current, chosen).date(), chosen)
    return [p for p in wanted if not _covered(p, info.partitions)]


def _covered(period: Period, parts: Sequence[Period]) -> bool:
    assert period.start is not None and period.end is not None
    point = period.start
    for part in parts:  # sorted by lower bound
        if part.start is not None and part.start > point:
            break
        if part.end is None or part.end > point:
            point = part.end if part.end is not None else period.end
            if point >= period.end:
                return True
    return point >= period.end


# --------------------------------------------------------------------------------------------
# detach


def plan_detach(conn: Connection, table: str, older_than: str | date, *, drop: bool = False) -> DetachPlan:
    """The partitions wholly older than ``older_than`` (upper bound at or before its UTC midnight),
    never the default one, and the statements that take them out."""
    cutoff_day = parse_date(older_than, "--older-than")
    cutoff = datetime(cutoff_day.year, cutoff_day.month, cutoff_day.day, tzinfo=timezone.utc)
    with _transaction(conn), _pinned_session(conn, None):
        info = describe_table(conn, table)
        version = server_version(conn)
    old = tuple(p for p in info.partitions if p.end is not None and p.end <= cutoff)
    why_not = None
    if version < CONCURRENT_DETACH_MIN_VERSION:
        why_not = "the server is older than PostgreSQL 14"
    elif info.default_partition:
        # "ALTER TABLE": CONCURRENTLY "cannot be used when the partitioned table has a default partition"
        why_not = f"{info.name} has a default partition ({info.default_partition})"
    concurrently = why_not is None
    parent = quote_name(conn, info.schema, info.name)
    steps: list[DetachStep] = []
    for part in old:
        child = quote_name(conn, info.schema, part.name)
        finalize = f"ALTER TABLE {parent} DETACH PARTITION {child} FINALIZE"
        if part.name in info.detach_pending:
            # an interrupted DETACH ... CONCURRENTLY left it half-detached: finish that one
            steps.append(DetachStep(finalize))
        elif concurrently:
            steps.append(
                DetachStep(f"ALTER TABLE {parent} DETACH PARTITION {child} CONCURRENTLY", child, finalize)
            )
        else:
            steps.append(DetachStep(f"ALTER TABLE {parent} DETACH PARTITION {child}"))
        if drop:
            steps.append(DetachStep(f"DROP TABLE {child}"))
    return DetachPlan(info.name, cutoff_day, old, drop, concurrently, why_not, tuple(steps))


def apply_detach(
    conn: Connection,
    plan: DetachPlan,
    *,
    lock_timeout: str | None = None,
    retries: int = DEFAULT_RETRIES,
    on_retry: Callable[[int], None] | None = None,
) -> DetachResult:
    """Run the plan's statements, each on its own (CONCURRENTLY cannot run in a transaction
    block), each with a bounded lock wait and retries.

    DETACH ... CONCURRENTLY runs as two transactions; if the second one's wait (for every
    query that may still see the partition) times out, the partition is left "pending
    detach", and the retry completes that same detach with DETACH ... FINALIZE.
    """
    timeout = duration("lock_timeout", lock_timeout or DEFAULT_LOCK_TIMEOUT)
    if conn.in_transaction():
        conn.commit()
    auto = conn.execution_options(isolation_level="AUTOCOMMIT")
    result = DetachResult(plan)
    try:
        auto.execute(text("SELECT set_config('lock_timeout', :lt, false)"), {"lt": timeout})
        for step in plan.steps:

            def run(step: DetachStep = step) -> str:
                sql = step.statement
                if step.finalize and step.partition and _detach_pending(auto, step.partition):
                    sql = step.finalize
                auto.execute(text(sql))
                return sql

            done, _ = _with_retries(
                run, retries=retries, what=step.statement, lock_timeout=timeout, on_retry=on_retry
            )
            result.executed.append(done)
    finally:
        auto.execute(text("RESET lock_timeout"))
        auto.commit()
        conn.execution_options(isolation_level=conn.default_isolation_level)
    return result


def _detach_pending(conn: Connection, partition: str) -> bool:
    return bool(
        conn.execute(
            text("SELECT bool_or(inhdetachpending) FROM pg_inherits WHERE inhrelid = to_regclass(:rel)"),
            {"rel": partition},
        ).scalar()
    )


# --------------------------------------------------------------------------------------------
# non-blocking index for revisions


def create_partitioned_index_concurrently(
    op: Any,
    name: str,
    columns: Sequence[str],
    *,
    table: str = "attempts",
    unique: bool = False,
    using: str | None = None,
    where: str | None = None,
) -> None:
    """Build an index on a partitioned table without blocking writes, from a revision.

    PostgreSQL cannot CREATE INDEX CONCURRENTLY on a partitioned table (see "CREATE INDEX",
    Notes), so: the index ``ON ONLY`` the parent (created invalid, catalog only), then
    ``CREATE INDEX CONCURRENTLY`` on each partition, then ``ALTER INDEX ... ATTACH PARTITION``;
    the parent index turns valid once every partition has one attached. It all runs in an
    autocommit block: CONCURRENTLY cannot run in a transaction, and the ON ONLY statement's
    SHARE lock is released at once instead of being held to the end of the revision.

    One generator query names the per-partition statements. Online, its rows are executed; in
    offline (``--sql``) mode it is emitted followed by psql's ``\\gexec``, which executes the
    very same generated statements one by one at apply time — so a partition created between
    writing and applying the script is not missed. Partitions that already carry a matching
    attached index (created after the parent index) are skipped.

    ``columns``: names, each optionally followed by ASC/DESC and NULLS FIRST/LAST.
    ``where``: a predicate for a partial index, trusted SQL from the revision's author.
    Downgrade: ``op.drop_index(name)`` (drops the partitions' indexes with it).
    """
    ctx = op.get_context()
    dialect = ctx.dialect
    prep = dialect.identifier_preparer
    body = _index_body(prep, columns, using, where)
    kind = "UNIQUE INDEX" if unique else "INDEX"
    parent_name = prep.quote(name)
    schema, _, bare_table = table.rpartition(".")
    qualified_table = (prep.quote_schema(schema) + "." if schema else "") + prep.quote(bare_table)
    parent_index = (prep.quote_schema(schema) + "." if schema else "") + parent_name
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise ConfigError(f"index name {name!r} is longer than {MAX_IDENTIFIER_BYTES} bytes", "shorten it")
    # A child index is named like the parent with the table name replaced by the partition's:
    # ix_attempts_score on attempts_2025 -> ix_attempts_2025_score.
    prefix, found, suffix = name.partition(bare_table)
    if not found:
        prefix, suffix = "", "_" + name
    lit = _sql_literal
    template_cic = f"CREATE {kind} CONCURRENTLY %I ON %I.%I {body.replace('%', '%%')}"
    generator = (
        "SELECT format(" + lit(template_cic) + ", child.index_name, child.nspname, child.relname),"
        " format('ALTER INDEX %s ATTACH PARTITION %I.%I', "
        + lit(parent_index)
        + ", child.nspname, child.index_name)"
        " FROM (SELECT n.nspname, c.relname, "
        + lit(prefix)
        + " || c.relname || "
        + lit(suffix)
        + " AS index_name"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE i.inhparent = CAST(" + lit(qualified_table) + " AS regclass) AND c.relkind = 'r'"
        " AND NOT EXISTS (SELECT 1 FROM pg_inherits ii JOIN pg_index x ON x.indexrelid = ii.inhrelid"
        " WHERE ii.inhparent = CAST(" + lit(parent_index) + " AS regclass) AND x.indrelid = c.oid)) AS child"
        " ORDER BY child.relname"
    )
    with ctx.autocommit_block():
        op.execute(_escape_colons(f"CREATE {kind} {parent_name} ON ONLY {qualified_table} {body}"))
        if ctx.as_sql:
            ctx.impl.static_output(generator + "\n\\gexec\n")
            return
        rows = op.get_bind().execute(_escape_colons(generator)).all()
        for create_child, attach_child in rows:
            op.execute(_escape_colons(create_child))
            op.execute(_escape_colons(attach_child))


def _index_body(prep: Any, columns: Sequence[str], using: str | None, where: str | None) -> str:
    if not columns:
        raise ConfigError("an index needs at least one column", "pass the column names")
    parts = []
    for spec in columns:
        match = _COLUMN_SPEC.match(spec.strip())
        if not match:
            raise ConfigError(
                f"index column {spec!r} is malformed",
                "write a column name, optionally ASC|DESC NULLS FIRST|LAST",
            )
        parts.append(
            prep.quote(match["name"]) + (match["order"] or "").upper() + (match["nulls"] or "").upper()
        )
    method = ""
    if using is not None:
        if not _ACCESS_METHOD.match(using):
            raise ConfigError(f"index method {using!r} is malformed", "use e.g. btree, brin, gin")
        method = f"USING {prep.quote(using)} "
    predicate = f" WHERE {where}" if where else ""
    return f"{method}({', '.join(parts)}){predicate}"


def _sql_literal(value: str) -> str:
    """A SQL string literal (standard_conforming_strings, on by default since PostgreSQL 9.1).

    Offline SQL cannot carry bound values, and the dialect's literal processor doubles ``%``
    for pyformat drivers, which would differ between online and offline output.
    """
    return "'" + value.replace("'", "''") + "'"


def _escape_colons(sql: str) -> Any:
    """``text()`` reads ``:name`` as a bind parameter; generated DDL has none (e.g. ``::int``)."""
    return text(sql.replace(":", "\\:"))


__all__ = [
    "DetachPlan",
    "DetachResult",
    "DetachStep",
    "EnsureResult",
    "PartitionListing",
    "PartitionRow",
    "PartitionedTable",
    "Period",
    "apply_detach",
    "create_partitioned_index_concurrently",
    "describe_table",
    "ensure",
    "list_partitions",
    "missing_partitions",
    "plan_detach",
]
