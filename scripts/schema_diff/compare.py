"""Compare the expected schema (models + revision-owned objects) with the live one."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from scripts.findings import Finding, Severity
from scripts.partitions import Period
from scripts.schema_diff.catalog import CatalogState, ColumnState, TableState
from scripts.schema_diff.owned import OwnedObjects

ABSENT = "(absent)"
FIX_MODEL_DRIFT = (
    "if the models are right: `alp-db migration generate <description> --autogenerate`, review the "
    "revision, then `alembic upgrade head`; if the database is right: change models/ to match it"
)
FIX_UNEXPECTED = (
    "if it was made by hand (a hotfix), model it and write a revision; otherwise drop it in a revision"
)
FIX_NOT_RECORDED = (
    FIX_UNEXPECTED + "; if a revision creates it, record it: alp-db record-owned"
    " > scripts/schema_diff/owned_objects.py"
)
FIX_PARTITIONS = "run `alp-db partitions ensure` (it creates the missing yearly partitions)"
# A period partition's name after its parent's: attempts_2024 (yearly), attempts_2024_03 (monthly).
# Detached and kept (an archive), it is worth a warning, not a failed build.
PERIOD_PARTITION = re.compile(r"\d{4}(_\d{2})?")
# Bounds of a RANGE partition as pg_get_expr prints them: FOR VALUES FROM ('...') TO ('...').


def finding(
    kind: str, obj: str, expected: str, actual: str, fix: str, severity: Severity = Severity.ERROR
) -> Finding:
    return Finding(kind, obj, severity, expected, actual, fix)


def describe_column(column: ColumnState) -> str:
    parts = [column.type, "NULL" if column.nullable else "NOT NULL"]
    if column.default is not None:
        parts.append(f"DEFAULT {column.default}")
    if column.identity:
        parts.append(f"GENERATED {column.identity.upper()} AS IDENTITY")
    return " ".join(parts)


def compare_tables(
    expected: CatalogState, actual: CatalogState, ignored: frozenset[str]
) -> Iterator[Finding]:
    for name, table in expected.tables.items():
        live = actual.tables.get(name)
        if live is None:
            yield finding("table", name, f"table {name} (in the models)", ABSENT, FIX_MODEL_DRIFT)
            continue
        yield from compare_table(table, live)
    partitioned = [n for n, t in expected.tables.items() if t.partition_key]
    for name in sorted(set(actual.tables) - set(expected.tables) - ignored):
        parent = next((p for p in partitioned if is_period_partition(name, p)), None)
        if parent is not None:
            yield finding(
                "detached partition",
                name,
                f"{name} attached to {parent}, or gone",
                f"table {name}, detached from {parent}",
                f"drop it once it is archived, or attach it back (ALTER TABLE {parent} ATTACH PARTITION ...)",
                Severity.WARNING,
            )
            continue
        yield finding("table", name, "(not in the models)", f"table {name}", FIX_UNEXPECTED)


def is_period_partition(name: str, parent: str) -> bool:
    prefix = f"{parent}_"
    return name.startswith(prefix) and PERIOD_PARTITION.fullmatch(name[len(prefix) :]) is not None


def compare_table(exp: TableState, live: TableState) -> Iterator[Finding]:
    t = exp.name
    for name, column in exp.columns.items():
        have = live.columns.get(name)
        obj = f"{t}.{name}"
        if have is None:
            yield finding("column", obj, describe_column(column), ABSENT, FIX_MODEL_DRIFT)
            continue
        for aspect, want, got in (
            ("type", column.type, have.type),
            (
                "nullability",
                "NULL" if column.nullable else "NOT NULL",
                "NULL" if have.nullable else "NOT NULL",
            ),
            ("server default", column.default or "(none)", have.default or "(none)"),
            ("identity", column.identity or "(none)", have.identity or "(none)"),
        ):
            if want != got:
                yield finding(f"column {aspect}", obj, want, got, FIX_MODEL_DRIFT)
    for name in live.columns.keys() - exp.columns.keys():
        yield finding(
            "column",
            f"{t}.{name}",
            "(not in the models)",
            describe_column(live.columns[name]),
            FIX_UNEXPECTED,
        )
    if exp.primary_key != live.primary_key:
        yield finding(
            "primary key", t, describe_key(exp.primary_key), describe_key(live.primary_key), FIX_MODEL_DRIFT
        )
    yield from compare_named(
        "foreign key",
        t,
        {k: v.describe() for k, v in exp.foreign_keys.items()},
        {k: v.describe() for k, v in live.foreign_keys.items()},
    )
    yield from compare_named(
        "unique constraint",
        t,
        {k: f"UNIQUE ({', '.join(v)})" for k, v in exp.uniques.items()},
        {k: f"UNIQUE ({', '.join(v)})" for k, v in live.uniques.items()},
    )
    yield from compare_named("check constraint", t, exp.checks, live.checks)
    yield from compare_named(
        "index",
        t,
        {k: v.describe() for k, v in exp.indexes.items()},
        {k: v.describe() for k, v in live.indexes.items()},
    )
    if exp.partition_key != live.partition_key:
        yield finding(
            "partitioning",
            t,
            f"PARTITION BY {exp.partition_key}" if exp.partition_key else "not partitioned",
            f"PARTITION BY {live.partition_key}" if live.partition_key else "not partitioned",
            FIX_MODEL_DRIFT,
        )


def describe_key(key: tuple[str, tuple[str, ...]] | None) -> str:
    return ABSENT if key is None else f"{key[0]} PRIMARY KEY ({', '.join(key[1])})"


def compare_named(
    kind: str, table: str, expected: dict[str, str], actual: dict[str, str]
) -> Iterator[Finding]:
    """Objects matched by name; one with another name but the same meaning is reported as renamed."""
    missing = {n: d for n, d in expected.items() if n not in actual}
    extra = {n: d for n, d in actual.items() if n not in expected}
    for name, definition in missing.items():
        renamed = next((n for n, d in extra.items() if d == definition), None)
        if renamed is not None:
            del extra[renamed]
            yield finding(
                f"{kind} name",
                f"{table}.{name}",
                f"{name}: {definition}",
                f"{renamed}: {definition}",
                f"rename it: the naming convention in models/base.py says {name}",
            )
            continue
        yield finding(kind, f"{table}.{name}", definition, ABSENT, FIX_MODEL_DRIFT)
    for name, definition in extra.items():
        yield finding(kind, f"{table}.{name}", "(not in the models)", definition, FIX_UNEXPECTED)
    for name in expected.keys() & actual.keys():
        if expected[name] != actual[name]:
            yield finding(kind, f"{table}.{name}", expected[name], actual[name], FIX_MODEL_DRIFT)


def compare_enums(
    expected: dict[str, tuple[str, ...]], actual: dict[str, tuple[str, ...]]
) -> Iterator[Finding]:
    for name, values in expected.items():
        have = actual.get(name)
        want = ", ".join(values)
        if have is None:
            yield finding("enum type", name, want, ABSENT, FIX_MODEL_DRIFT)
        elif have != values:
            yield finding(
                "enum type",
                name,
                want,
                ", ".join(have),
                "add the value to the Python enum in models/enums.py (same position), or remove it"
                " from the database in a revision (PostgreSQL cannot drop an enum value in place)"
                if set(values) < set(have)
                else FIX_MODEL_DRIFT,
            )
    for name in sorted(actual.keys() - expected.keys()):
        yield finding("enum type", name, "(not in the models)", ", ".join(actual[name]), FIX_UNEXPECTED)


def compare_owned(owned: OwnedObjects, actual: CatalogState, views: dict[str, str]) -> Iterator[Finding]:
    """Triggers, functions, views and default partitions against what the revisions create."""
    restore = "re-create it as {source} does, in a new revision"
    for key, fn in owned.functions.items():
        have = actual.functions.get(key)
        fix = restore.format(source=owned.source(fn.name))
        if have is None:
            yield finding("function", key, f"{fn.language} function returning {fn.result}", ABSENT, fix)
        elif (have.result, have.language, have.body) != (fn.result, fn.language, fn.body):
            yield finding("function", key, fn.body.strip(), have.body.strip(), fix)
    for key in sorted(actual.functions.keys() - owned.functions.keys()):
        yield finding(
            "function",
            key,
            "(not created by any revision)",
            actual.functions[key].language + " function",
            FIX_NOT_RECORDED,
        )
    for key, trig in owned.triggers.items():
        live_trigger = actual.triggers.get(key)
        fix = restore.format(source=owned.source(trig.name))
        if live_trigger is None:
            yield finding("trigger", key, trig.definition, ABSENT, fix)
        elif live_trigger.definition != trig.definition:
            yield finding("trigger", key, trig.definition, live_trigger.definition, fix)
        elif not live_trigger.enabled:
            yield finding(
                "trigger", key, "enabled", "disabled", f"ALTER TABLE {trig.table} ENABLE TRIGGER {trig.name}"
            )
    for key in sorted(actual.triggers.keys() - owned.triggers.keys()):
        yield finding(
            "trigger",
            key,
            "(not created by any revision)",
            actual.triggers[key].definition,
            FIX_NOT_RECORDED,
        )
    for name, definition in views.items():
        live_view = actual.views.get(name)
        fix = restore.format(source=owned.source(name))
        if live_view is None:
            yield finding("view", name, definition.strip(), ABSENT, fix)
        elif live_view.strip() != definition.strip():
            yield finding("view", name, definition.strip(), live_view.strip(), fix)
    for name in sorted(actual.views.keys() - views.keys()):
        yield finding(
            "view",
            name,
            "(not created by any revision)",
            actual.views[name].strip(),
            FIX_NOT_RECORDED,
        )
    for parent, partition in owned.default_partitions.items():
        table = actual.tables.get(parent)
        if table is None:
            continue  # the missing table is reported already
        defaults = [n for n, bound in table.partitions.items() if bound == "DEFAULT"]
        if partition not in defaults:
            detached = partition in actual.tables
            yield finding(
                "default partition",
                f"{parent}.{partition}",
                f"{partition} attached as the DEFAULT partition of {parent}",
                f"{partition} exists but is detached" if detached else (", ".join(defaults) or ABSENT),
                f"ALTER TABLE {parent} ATTACH PARTITION {partition} DEFAULT"
                if detached
                else restore.format(source=owned.source(partition)),
            )


def partition_coverage(missing: dict[str, list[Period]], now: dt.datetime) -> Iterator[Finding]:
    """A warning when no partition holds the current period or the one after it.

    The default partition would take those rows, but moving them out later needs a scan
    under lock ("Partition Maintenance"), so a missing period is worth acting on early.
    ``missing`` comes from scripts.partitions.missing_partitions, the partition manager's
    own reading of coverage; a missing current period is reported alone.
    """
    for table, periods in sorted(missing.items()):
        for period in periods:
            assert period.start is not None and period.end is not None
            current = period.start <= now < period.end
            yield finding(
                "partition",
                f"{table} ({'current' if current else 'next'} period)",
                f"a partition of {table} from {period.start:%Y-%m-%d} to {period.end:%Y-%m-%d}",
                ABSENT,
                FIX_PARTITIONS,
                Severity.WARNING,
            )
            if current:
                break
