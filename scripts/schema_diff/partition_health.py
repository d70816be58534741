"""Partition health as drift: where rows would go to the wrong place, or nowhere.

The partition manager (scripts.partitions) reads the bounds and knows the periods; this
module only says what is wrong. Drift (exit 1): bounds that are not the period the name
says, a gap between partitions inside the covered range (rows there land in the DEFAULT
partition, or fail), the current period without its partition. A warning: the next period
not created yet, which ``alp-db partitions ensure`` does ahead of time.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from scripts.errors import PartitionError
from scripts.findings import Finding, Severity
from scripts.partitions.catalog import PartitionedTable, describe_table
from scripts.partitions.ensure_plan import infer_interval
from scripts.partitions.listing import missing_partitions
from scripts.partitions.period_math import Period, period_shape, periods
from scripts.schema_diff.compare import ABSENT, finding, is_period_partition, q

FIX_PARTITIONS = "run `alp-db partitions ensure` (it creates the missing partitions)"


@dataclass(frozen=True)
class PartitionHealth:
    """What the partition manager says about one RANGE-partitioned table."""

    info: PartitionedTable
    interval: str
    missing: list[Period]  # the current and next period without a partition


def read_partition_health(
    conn: Connection, schema: str, tables: list[str], now: dt.datetime
) -> list[PartitionHealth]:
    found = []
    for table in tables:
        qualified = f"{schema}.{table}"
        try:
            info = describe_table(conn, qualified)
            missing = missing_partitions(conn, qualified, at=now.date())
        except PartitionError:
            continue  # not partitioned by time, or bounds the manager cannot read: nothing to say
        found.append(PartitionHealth(info, infer_interval(info), missing))
    return found


def show(value: dt.datetime | None) -> str:
    return "MINVALUE" if value is None else f"{value:%Y-%m-%d %H:%M:%S+00}"


def bounds(period: Period) -> str:
    return f"FOR VALUES FROM ('{show(period.start)}') TO ('{show(period.end)}')"


def partition_findings(health: list[PartitionHealth], now: dt.datetime) -> Iterator[Finding]:
    for table in health:
        yield from wrong_bounds(table)
        yield from gaps(table)
        yield from coverage(table, now)


def wrong_bounds(table: PartitionHealth) -> Iterator[Finding]:
    info = table.info
    finite = [p for p in info.partitions if p.start is not None and p.end is not None]
    if not finite:
        return
    first, last = finite[0].start, finite[-1].end
    assert first is not None and last is not None
    named = {p.name: p for p in periods(info.name, first.date(), last.date(), table.interval)}
    for part in finite:
        if not is_period_partition(part.name, info.name):
            continue  # not named for a period: nothing to hold its bounds to
        want = named.get(part.name)
        if want is not None and want.same_range(part) and period_shape(part) == table.interval:
            continue
        yield finding(
            "partition bounds",
            f"{info.name}.{part.name}",
            bounds(want) if want else f"the {table.interval} its name says",
            bounds(part),
            f"ALTER TABLE {q(info.name)} DETACH PARTITION {q(part.name)}; then attach it back"
            f" {bounds(want) if want else 'with the bounds of its period'}"
            " (rows outside them must move first)",
        )


def gaps(table: PartitionHealth) -> Iterator[Finding]:
    info = table.info
    finite = [p for p in info.partitions if p.start is not None and p.end is not None]
    for before, after in itertools.pairwise(finite):
        assert before.end is not None and after.start is not None
        if before.end < after.start:
            gap = Period("", before.end, after.start)
            yield finding(
                "partition gap",
                f"{info.name} ({show(before.end)[:10]} to {show(after.start)[:10]})",
                f"a partition of {info.name} {bounds(gap)}",
                f"nothing between {before.name} and {after.name}: rows there go to"
                f" {info.default_partition or 'no partition (inserts fail)'}",
                f"CREATE TABLE ... PARTITION OF {q(info.name)} {bounds(gap)}, or {FIX_PARTITIONS}",
            )


def coverage(table: PartitionHealth, now: dt.datetime) -> Iterator[Finding]:
    """The current period missing is drift: its rows land in the default partition now, and
    moving them out later needs a scan under lock ("Partition Maintenance"). The next period
    missing is a warning. ``missing`` is the partition manager's own reading of coverage."""
    for period in table.missing:
        assert period.start is not None and period.end is not None
        current = period.start <= now < period.end
        yield finding(
            "partition",
            f"{table.info.name} ({'current' if current else 'next'} period)",
            f"a partition of {table.info.name} from {period.start:%Y-%m-%d} to {period.end:%Y-%m-%d}",
            ABSENT
            if not current
            else f"{ABSENT}: its rows land in {table.info.default_partition or 'no partition'}",
            FIX_PARTITIONS,
            Severity.ERROR if current else Severity.WARNING,
        )
        if current:
            break
