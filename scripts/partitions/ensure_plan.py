"""What ``ensure`` would create: the periods from a start to a horizon that lack a partition."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import text
from sqlalchemy.engine import Connection

from scripts.errors import ConfigError, PartitionOverlap
from scripts.partitions.catalog import PartitionedTable, quote_name
from scripts.partitions.defaults import MAX_NEW_PARTITIONS
from scripts.partitions.period_math import Period, advance, period_shape, period_start, periods

# The CHECK constraint that proves a new table's rows lie within its bounds, so that ATTACH
# PARTITION skips its validation scan ("ALTER TABLE", ATTACH PARTITION). It also marks a
# table that an interrupted `ensure` created and had not attached yet, so a re-run finishes it.
BOUNDS_CHECK = "alp_db_ensure_bounds"


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
    resume: set[str] = set()
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
                "SELECT c.relkind, EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid"
                " AND k.contype = 'c' AND k.conname = :marker) FROM pg_class c"
                " WHERE c.relname = :n AND c.relnamespace = CAST(:s AS regnamespace)"
            ),
            {
                "n": period.name,
                "s": conn.dialect.identifier_preparer.quote_schema(info.schema),
                "marker": BOUNDS_CHECK,
            },
        ).first()
        if taken is not None and tuple(taken) == ("r", True):
            # a table an interrupted ensure created and had not attached yet: finish it
            resume.add(period.name)
        elif taken is not None:
            raise PartitionOverlap(
                f"cannot create {period.name}: a relation of that name exists and is not a partition of"
                f" {info.name}",
                "rename or drop it, then run ensure again",
            )
        todo.append(period)
    return EnsurePlan(wanted, todo, frozenset(resume))


@dataclass(frozen=True)
class EnsurePlan:
    wanted: list[Period]  # every period from the start to the horizon
    todo: list[Period]  # those without their partition
    resume: frozenset[str] = frozenset()  # of those, tables an interrupted run left unattached
