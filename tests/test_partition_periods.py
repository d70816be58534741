"""Period arithmetic and bound parsing of the partition manager: pure, no database."""

from __future__ import annotations

from datetime import date, datetime, timezone
from itertools import pairwise

import pytest

from scripts.errors import ConfigError, NotPartitioned
from scripts.partitions.period_math import (
    Period,
    advance,
    as_utc,
    check_interval,
    covered,
    parse_bound,
    parse_bound_value,
    parse_date,
    period_name,
    period_shape,
    period_start,
    periods,
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("day", "interval", "start"),
    [
        (date(2025, 6, 15), "year", utc(2025, 1, 1)),
        (date(2025, 1, 1), "year", utc(2025, 1, 1)),
        (date(2025, 6, 15), "month", utc(2025, 6, 1)),
        (date(2025, 12, 31), "month", utc(2025, 12, 1)),
        (date(2024, 2, 29), "month", utc(2024, 2, 1)),
    ],
)
def test_period_start_is_the_utc_midnight_opening_the_period(day: date, interval: str, start: datetime):
    assert period_start(day, interval) == start


@pytest.mark.parametrize(
    ("start", "interval", "steps", "expected"),
    [
        (utc(2025, 1, 1), "year", 1, utc(2026, 1, 1)),
        (utc(2025, 1, 1), "year", 3, utc(2028, 1, 1)),
        (utc(2025, 11, 1), "month", 1, utc(2025, 12, 1)),
        (utc(2025, 12, 1), "month", 1, utc(2026, 1, 1)),  # across the year
        (utc(2025, 12, 1), "month", 14, utc(2027, 2, 1)),
        (utc(2025, 3, 1), "month", -3, utc(2024, 12, 1)),  # backwards across the year
        (utc(2025, 1, 1), "month", 0, utc(2025, 1, 1)),
    ],
)
def test_advance_moves_by_whole_periods(start: datetime, interval: str, steps: int, expected: datetime):
    assert advance(start, interval, steps) == expected


@pytest.mark.parametrize(
    ("start", "interval", "name"),
    [
        (utc(2025, 1, 1), "year", "attempts_2025"),
        (utc(2025, 1, 1), "month", "attempts_2025_01"),
        (utc(2025, 12, 1), "month", "attempts_2025_12"),
    ],
)
def test_period_names_follow_the_guide(start: datetime, interval: str, name: str):
    assert period_name("attempts", start, interval) == name


@pytest.mark.parametrize(
    ("first", "last", "interval", "names"),
    [
        (date(2025, 3, 1), date(2025, 3, 31), "year", ["attempts_2025"]),
        (date(2025, 3, 1), date(2027, 1, 1), "year", ["attempts_2025", "attempts_2026", "attempts_2027"]),
        (
            date(2025, 11, 20),
            date(2026, 1, 5),
            "month",
            ["attempts_2025_11", "attempts_2025_12", "attempts_2026_01"],
        ),
        (date(2026, 1, 1), date(2025, 1, 1), "year", []),  # last before first: nothing
    ],
)
def test_periods_cover_first_to_last_inclusive(first: date, last: date, interval: str, names: list[str]):
    got = periods("attempts", first, last, interval)
    assert [p.name for p in got] == names
    for before, after in pairwise(got):
        assert before.end == after.start  # contiguous, no gap, no overlap


@pytest.mark.parametrize(
    ("period", "shape"),
    [
        (Period("p", utc(2025, 1, 1), utc(2026, 1, 1)), "year"),
        (Period("p", utc(2025, 2, 1), utc(2025, 3, 1)), "month"),
        (Period("p", utc(2025, 1, 1), utc(2025, 2, 1)), "month"),
        (Period("p", utc(2025, 1, 1), utc(2027, 1, 1)), None),  # two years
        (Period("p", utc(2025, 1, 1, 5), utc(2026, 1, 1, 5)), None),  # New York's midnight
        (Period("p", None, utc(2025, 1, 1)), None),  # MINVALUE
    ],
)
def test_period_shape_recognises_exactly_one_utc_year_or_month(period: Period, shape: str | None):
    assert period_shape(period) == shape


@pytest.mark.parametrize(
    ("a", "b", "overlaps"),
    [
        ((utc(2025, 1, 1), utc(2026, 1, 1)), (utc(2026, 1, 1), utc(2027, 1, 1)), False),  # touching
        ((utc(2025, 1, 1), utc(2026, 1, 1)), (utc(2025, 6, 1), utc(2025, 7, 1)), True),  # inside
        ((None, utc(2025, 1, 1)), (utc(2024, 12, 1), utc(2025, 1, 1)), True),  # MINVALUE
        ((utc(2030, 1, 1), None), (utc(2025, 1, 1), utc(2026, 1, 1)), False),  # MAXVALUE, after
    ],
)
def test_overlap_is_of_half_open_ranges(a: tuple, b: tuple, overlaps: bool):
    assert Period("a", *a).overlaps(Period("b", *b)) is overlaps
    assert Period("b", *b).overlaps(Period("a", *a)) is overlaps


YEARS = [Period(f"y{y}", utc(y, 1, 1), utc(y + 1, 1, 1)) for y in (2024, 2025, 2027)]


@pytest.mark.parametrize(
    ("period", "is_covered"),
    [
        (Period("m", utc(2025, 12, 1), utc(2026, 1, 1)), True),  # a month inside a year
        (Period("y", utc(2024, 1, 1), utc(2026, 1, 1)), True),  # across two adjacent partitions
        (Period("y", utc(2026, 1, 1), utc(2027, 1, 1)), False),  # the gap
        (Period("y", utc(2025, 6, 1), utc(2026, 6, 1)), False),  # half in the gap
        (Period("y", utc(2023, 1, 1), utc(2024, 1, 1)), False),  # before every partition
    ],
)
def test_covered_needs_partitions_without_a_gap(period: Period, is_covered: bool):
    assert covered(period, YEARS) is is_covered


def test_covered_counts_an_unbounded_partition():
    assert covered(Period("m", utc(2031, 1, 1), utc(2031, 2, 1)), [Period("rest", utc(2030, 1, 1), None)])


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("'2025-01-01 00:00:00+00'", utc(2025, 1, 1)),
        ("'2025-01-01 05:00:00+05'", utc(2025, 1, 1)),  # an offset other than UTC is converted
        ("'2025-01-01 00:00:00'", utc(2025, 1, 1)),  # timestamp without time zone: read as UTC
        ("'2025-01-01'", utc(2025, 1, 1)),  # date key
        ("MINVALUE", None),
        ("MAXVALUE", None),
        ("'-infinity'", None),
        ("'infinity'", None),
    ],
)
def test_bound_values_read_as_pg_get_expr_prints_them(raw: str, value: datetime | None):
    assert parse_bound_value(raw) == value


def test_bound_of_a_range_partition_is_read_into_a_period():
    period = parse_bound(
        "attempts_2025", "FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2026-01-01 00:00:00+00')"
    )
    assert period == Period("attempts_2025", utc(2025, 1, 1), utc(2026, 1, 1))
    assert period.describe() == "attempts_2025 [2025-01-01 00:00:00+00, 2026-01-01 00:00:00+00)"
    assert parse_bound("old", "FOR VALUES FROM (MINVALUE) TO ('2024-01-01 00:00:00+00')").start is None


@pytest.mark.parametrize(
    "bound", ["DEFAULT", "FOR VALUES IN ('a')", "FOR VALUES WITH (modulus 4, remainder 0)"]
)
def test_a_bound_that_is_not_a_range_is_refused(bound: str):
    with pytest.raises(NotPartitioned, match="has an unreadable bound"):
        parse_bound("p", bound)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-01-01", date(2025, 1, 1)),
        (" 2025-01-01 ", date(2025, 1, 1)),
        (date(2025, 1, 1), date(2025, 1, 1)),
        (datetime(2025, 1, 1, 13, 0), date(2025, 1, 1)),
    ],
)
def test_dates_are_read_as_iso(value: str | date, expected: date):
    assert parse_date(value) == expected


@pytest.mark.parametrize("value", ["2025-13-01", "2025/01/01", "last year", ""])
def test_a_malformed_date_is_one_config_error(value: str):
    with pytest.raises(ConfigError, match=r"--start .* is not a date — write it as YYYY-MM-DD"):
        parse_date(value, "--start")


def test_an_unknown_interval_is_refused():
    assert check_interval("month") == "month"
    with pytest.raises(ConfigError, match="interval 'week' is not known — use one of: year, month"):
        check_interval("week")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (date(2025, 1, 2), utc(2025, 1, 2)),
        (datetime(2025, 1, 2, 3), utc(2025, 1, 2, 3)),
        (datetime.fromisoformat("2025-01-02T05:00:00+02:00"), utc(2025, 1, 2, 3)),
    ],
)
def test_key_values_from_the_database_become_utc(value: object, expected: datetime | None):
    assert as_utc(value) == expected


def test_every_public_name_imports_from_the_package_even_after_its_modules():
    """Revisions import scripts.partitions.create_partitioned_index_concurrently; importing a
    submodule first must not hide a function behind a module of the same name."""
    import importlib

    import scripts.partitions as package

    for module in ("catalog", "detach", "ensure_plan", "ensure_run", "index", "listing", "period_math"):
        importlib.import_module(f"scripts.partitions.{module}")
    for name in package.__all__:
        value = getattr(package, name)
        assert not isinstance(value, type(package)), f"scripts.partitions.{name} is a module"
    assert callable(package.ensure)
    assert callable(package.create_partitioned_index_concurrently)
