"""Compare the expected tables (the models, normalised by the server) with the live ones.

Where one statement puts a difference right, HOW TO FIX gives it (identifiers quoted by the
PostgreSQL dialect's preparer); otherwise it says which side to change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace

from sqlalchemy.dialects import postgresql

from scripts.db.sqltext import quote_literal
from scripts.findings import Finding, Severity
from scripts.schema_diff.states import CatalogState, ColumnState, TableState

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
# A period partition's name after its parent's: attempts_2024 (yearly), attempts_2024_03 (monthly).
# Detached and kept (an archive), it is worth a warning, not a failed build.
PERIOD_PARTITION = re.compile(r"\d{4}(_\d{2})?")
PREPARER = postgresql.dialect().identifier_preparer


def q(name: str) -> str:
    return str(PREPARER.quote(name))


def finding(
    kind: str, obj: str, expected: str, actual: str, fix: str, severity: Severity = Severity.ERROR
) -> Finding:
    return Finding(kind, obj, severity, expected, actual, fix)


def with_sql(sql: str) -> str:
    """HOW TO FIX when one statement puts the database back as the models say."""
    return f"{sql};\n(or, if the database is right, change models/ and write a revision to match)"


def describe_column(column: ColumnState) -> str:
    parts = [column.type]
    if column.collation:
        parts.append(f'COLLATE "{column.collation}"')
    parts.append("NULL" if column.nullable else "NOT NULL")
    if column.default is not None:
        parts.append(f"DEFAULT {column.default}")
    if column.identity:
        parts.append(f"GENERATED {column.identity.upper()} AS IDENTITY")
    if column.generated:
        parts.append(f"GENERATED ALWAYS AS ({column.generated}) STORED")
    return " ".join(parts)


def compare_tables(
    expected: CatalogState,
    actual: CatalogState,
    ignored: frozenset[str],
    same_default: Callable[[str, str, str], bool] | None = None,
) -> Iterator[Finding]:
    for name, table in expected.tables.items():
        live = actual.tables.get(name)
        if live is None:
            yield finding("table", name, f"table {name} (in the models)", ABSENT, FIX_MODEL_DRIFT)
            continue
        yield from compare_table(table, live, same_default)
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


def column_fix(t: str, name: str, want: ColumnState, aspect: str) -> str:
    """The one statement that gives the column the aspect the models say (ALTER TABLE)."""
    alter = f"ALTER TABLE {q(t)} ALTER COLUMN {q(name)}"
    collate = f' COLLATE "{want.collation}"' if want.collation else ""
    if aspect == "type":
        return with_sql(f"{alter} TYPE {want.type}{collate}")
    if aspect == "collation":
        return with_sql(f"{alter} TYPE {want.type}{collate or ' COLLATE ' + q('default')}")
    if aspect == "nullability":
        return with_sql(f"{alter} {'DROP' if want.nullable else 'SET'} NOT NULL")
    if aspect == "server default":
        return with_sql(f"{alter} SET DEFAULT {want.default}" if want.default else f"{alter} DROP DEFAULT")
    if aspect == "comment":
        value = quote_literal(want.comment) if want.comment else "NULL"
        return with_sql(f"COMMENT ON COLUMN {q(t)}.{q(name)} IS {value}")
    if aspect == "generation" and not want.generated:
        # PostgreSQL 13+: a generated column becomes a plain one in place ("ALTER TABLE").
        return with_sql(f"{alter} DROP EXPRESSION")
    return FIX_MODEL_DRIFT


def compare_table(
    exp: TableState, live: TableState, same_default: Callable[[str, str, str], bool] | None = None
) -> Iterator[Finding]:
    t = exp.name
    for name, column in exp.columns.items():
        have = live.columns.get(name)
        obj = f"{t}.{name}"
        if have is None:
            yield finding("column", obj, describe_column(column), ABSENT, FIX_MODEL_DRIFT)
            continue
        for aspect, want, got in (
            ("type", column.type, have.type),
            ("collation", column.collation or "(default)", have.collation or "(default)"),
            (
                "nullability",
                "NULL" if column.nullable else "NOT NULL",
                "NULL" if have.nullable else "NOT NULL",
            ),
            ("server default", column.default or "(none)", have.default or "(none)"),
            ("identity", column.identity or "(none)", have.identity or "(none)"),
            ("generation", column.generated or "(not generated)", have.generated or "(not generated)"),
            ("comment", column.comment or "(none)", have.comment or "(none)"),
        ):
            if want == got:
                continue
            if (
                aspect == "server default"
                and column.default
                and have.default
                and same_default is not None
                and same_default(column.type, column.default, have.default)
            ):
                continue  # the same value spelled otherwise (0 and 0.0 on a double column)
            yield finding(f"column {aspect}", obj, want, got, column_fix(t, name, column, aspect))
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
    yield from compare_constraints(exp, live)
    yield from compare_table_options(exp, live)


def compare_constraints(exp: TableState, live: TableState) -> Iterator[Finding]:
    t = exp.name
    fk_fixes = {}
    for name, fk in exp.foreign_keys.items():
        have = live.foreign_keys.get(name)
        if have is None or have.describe() == fk.describe():
            continue
        if (
            replace(have, deferrable=fk.deferrable, validated=fk.validated) == fk
        ):  # only DEFERRABLE / NOT VALID differ: one statement each
            if not have.validated and fk.validated and have.deferrable == fk.deferrable:
                fk_fixes[name] = with_sql(f"ALTER TABLE {q(t)} VALIDATE CONSTRAINT {q(name)}")
            elif have.validated == fk.validated:
                mode = fk.deferrable or "NOT DEFERRABLE"
                fk_fixes[name] = with_sql(f"ALTER TABLE {q(t)} ALTER CONSTRAINT {q(name)} {mode}")
    yield from compare_named(
        "foreign key",
        t,
        {k: v.describe() for k, v in exp.foreign_keys.items()},
        {k: v.describe() for k, v in live.foreign_keys.items()},
        fk_fixes,
    )
    yield from compare_named(
        "unique constraint",
        t,
        {k: v.describe() for k, v in exp.uniques.items()},
        {k: v.describe() for k, v in live.uniques.items()},
    )
    yield from compare_named("check constraint", t, exp.checks, live.checks)
    yield from compare_named(
        "index",
        t,
        {k: v.describe() for k, v in exp.indexes.items()},
        {k: v.describe() for k, v in live.indexes.items()},
    )


def compare_table_options(exp: TableState, live: TableState) -> Iterator[Finding]:
    t = exp.name
    if exp.partition_key != live.partition_key:
        yield finding(
            "partitioning",
            t,
            f"PARTITION BY {exp.partition_key}" if exp.partition_key else "not partitioned",
            f"PARTITION BY {live.partition_key}" if live.partition_key else "not partitioned",
            FIX_MODEL_DRIFT,
        )
    if exp.persistence != live.persistence:
        # An unlogged table's rows are lost after a crash and never reach a standby
        # ("CREATE TABLE": UNLOGGED).
        yield finding(
            "table persistence",
            t,
            exp.persistence or "LOGGED",
            live.persistence or "LOGGED",
            with_sql(f"ALTER TABLE {q(t)} SET {exp.persistence or 'LOGGED'}"),
        )
    if exp.options != live.options:
        reset = sorted({o.split("=", 1)[0] for o in live.options} - {o.split("=", 1)[0] for o in exp.options})
        statements = []
        if exp.options:
            statements.append(f"ALTER TABLE {q(t)} SET ({', '.join(exp.options)})")
        if reset:
            statements.append(f"ALTER TABLE {q(t)} RESET ({', '.join(reset)})")
        yield finding(
            "storage parameters",
            t,
            ", ".join(exp.options) or "(defaults)",
            ", ".join(live.options) or "(defaults)",
            with_sql(";\n".join(statements)),
        )
    if (exp.comment or None) != (live.comment or None):
        yield finding(
            "table comment",
            t,
            exp.comment or "(none)",
            live.comment or "(none)",
            with_sql(
                f"COMMENT ON TABLE {q(t)} IS " + (quote_literal(exp.comment) if exp.comment else "NULL")
            ),
        )


def describe_key(key: tuple[str, tuple[str, ...]] | None) -> str:
    return ABSENT if key is None else f"{key[0]} PRIMARY KEY ({', '.join(key[1])})"


def compare_named(
    kind: str,
    table: str,
    expected: dict[str, str],
    actual: dict[str, str],
    fixes: dict[str, str] | None = None,
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
            fix = (fixes or {}).get(name, FIX_MODEL_DRIFT)
            yield finding(kind, f"{table}.{name}", expected[name], actual[name], fix)


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
