"""Period arithmetic and partition bounds: pure functions, no database.

Bounds are UTC midnights written with an explicit offset, exactly as revision 0001 writes them
('2025-01-01 00:00:00+00'), so they never depend on the session's TimeZone. The guide's
``FOR VALUES FROM ('2025-01-01')`` means the same bound only in a UTC session: a literal
without offset is read in the session TimeZone ("Date/Time Input" in the PostgreSQL docs).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from scripts.errors import ConfigError, NotPartitioned
from scripts.partitions.defaults import INTERVALS

BOUND_TIMEZONE = "UTC"
# Partition key types whose ranges we manage, and how a bound is written for each.
BOUND_FORMATS = {
    "timestamp with time zone": "%Y-%m-%d %H:%M:%S+00",
    "timestamp without time zone": "%Y-%m-%d %H:%M:%S",
    "date": "%Y-%m-%d",
}
# pg_get_expr(relpartbound) of a range partition, as the server prints it (catalog text, not
# user input): FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2026-01-01 00:00:00+00')
_BOUND = re.compile(r"^FOR VALUES FROM \((?P<lo>.+)\) TO \((?P<hi>.+)\)$", re.DOTALL)
_UNBOUNDED = frozenset({"MINVALUE", "MAXVALUE", "'-infinity'", "'infinity'"})


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
        return f"{self.name} [{show(self.start, 'MINVALUE')}, {show(self.end, 'MAXVALUE')})"

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "from": show(self.start, "MINVALUE"), "to": show(self.end, "MAXVALUE")}


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


def show(value: datetime | None, none: str) -> str:
    return none if value is None else value.strftime("%Y-%m-%d %H:%M:%S+00")


def show_short(value: datetime | None, none: str) -> str:
    if value is not None and value.time() == datetime.min.time():
        return value.strftime("%Y-%m-%d")
    return show(value, none)


def today_utc() -> date:
    return datetime.now(timezone.utc).date()


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


def covered(period: Period, parts: Sequence[Period]) -> bool:
    """Whether ``parts`` (sorted by lower bound) cover ``period`` without a gap."""
    assert period.start is not None and period.end is not None
    point = period.start
    for part in parts:
        if part.start is not None and part.start > point:
            break
        if part.end is None or part.end > point:
            point = part.end if part.end is not None else period.end
            if point >= period.end:
                return True
    return point >= period.end


def as_utc(value: Any) -> datetime | None:
    """A key value read from the database (date or datetime, naive or not) as a UTC datetime."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def parse_bound(name: str, bound: str) -> Period:
    """``pg_get_expr(relpartbound)`` of a range partition -> its Period (read in UTC)."""
    match = _BOUND.match(bound)
    if not match:
        raise NotPartitioned(
            f"partition {name!r} has an unreadable bound: {bound}", "is the key a range key?"
        )
    return Period(name, parse_bound_value(match["lo"]), parse_bound_value(match["hi"]))


def parse_bound_value(raw: str) -> datetime | None:
    """One bound value as pg_get_expr prints it in a UTC session; None for MINVALUE/MAXVALUE."""
    raw = raw.strip()
    if raw in _UNBOUNDED:
        return None
    value = raw.strip("'")
    value = re.sub(r"([+-]\d\d)$", r"\1:00", value)  # '+00' -> '+00:00' for fromisoformat
    parsed = datetime.fromisoformat(value)
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
