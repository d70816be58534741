"""validate-schema against Alembic's compare_metadata on a synthetic 1,000-table schema.

Each table has a primary key, a foreign key to the previous table, two indexes and a CHECK
(its bound differs per table, so no two CHECKs are alike). The schema is created once in a
fresh database from a MetaData; both sides then compare that same MetaData with the same
database, alternating (harness.interleave).

Two figures:

- "library call": ``scripts.schema_diff.validate_schema(url, metadata)`` — the whole of what the
  command does after argument parsing: connect, read the catalog, normalise the models'
  expressions on the server, compare, build the report — against
  ``alembic.autogenerate.compare_metadata`` with the options the project's autogenerate uses
  (compare_type, compare_server_default), on a new connection each run, as ours makes one.
- "process": the same two calls, each in a fresh Python process (``python -m
  benchmarks.bench_validator ours|alembic N``), so interpreter start, imports and building
  the 1,000-table MetaData are counted on both sides. The "floor" (``... floor N``: start,
  imports, building the tables, no comparison) is reported with it: no comparison can make
  a process faster than that, so ``alembic / floor`` is the best speedup possible.

The revision-owned objects (triggers, views...) of the real project are left out
(``OwnedObjects()``): the synthetic database has none. The URL reaches the child process
through DATABASE_URL, never argv.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    text,
)
from sqlalchemy.engine import URL

from benchmarks.harness import BenchContext, BenchResult, Stats, interleave, judge, paired

# The synthetic schema's own naming convention (the project's shape, models/base.py). Importing
# models.base would import the models package, which declares every ORM model of the project:
# a third of each child process's time, and neither side uses them (only Table objects here).
SYNTHETIC_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
FULL_TABLES = 1000
# --quick keeps the full size: the whole-process ratio depends on it (fixed start-up costs weigh
# more on a small schema), so a smaller quick run gave another verdict than the full one.
QUICK_TABLES = FULL_TABLES
TARGET_SPEEDUP = 3.0


def synthetic_models(count: int) -> MetaData:
    """``count`` tables, each with a PK, an FK, two indexes and a CHECK."""
    meta = MetaData(naming_convention=SYNTHETIC_NAMING)
    for n in range(count):
        name = f"bench_{n:04d}"
        parent = f"bench_{max(n - 1, 0):04d}.id"
        Table(
            name,
            meta,
            Column("id", Integer, primary_key=True, autoincrement=False),
            Column("parent_id", Integer, ForeignKey(parent, ondelete="CASCADE")),
            Column("score", Double, nullable=False, server_default=text("0")),
            Column("label", String(64), nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
            CheckConstraint(f"score >= 0 AND score <= {n + 1}", name="score_range"),
            Index(f"ix_{name}_parent_id", "parent_id"),
            Index(f"ix_{name}_label_created_at", "label", "created_at"),
        )
    return meta


CREATE_BATCH = 100  # tables per transaction: one transaction for all would need ~4,000 locks


def create_schema(url: URL, meta: MetaData) -> None:
    from scripts.db.engine import make_engine

    engine = make_engine(url)
    tables = meta.sorted_tables
    try:
        for start in range(0, len(tables), CREATE_BATCH):
            with engine.begin() as conn:
                meta.create_all(conn, tables=tables[start : start + CREATE_BATCH], checkfirst=False)
    finally:
        engine.dispose()


def drop_database(ctx: BenchContext, url: URL) -> None:
    from scripts.db.engine import make_engine

    engine = make_engine(ctx.admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(str(url.database))
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        engine.dispose()


def validate_once(url: URL | str, meta: MetaData) -> int:
    from scripts.schema_diff import OwnedObjects, validate_schema

    report = validate_schema(url, meta, owned=OwnedObjects())
    return len(report.findings)


def compare_once(url: URL | str, meta: MetaData) -> int:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from scripts.db.engine import make_engine
    from scripts.db.target import resolve_url

    engine = make_engine(resolve_url(url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return len(compare_metadata(context, meta))
    finally:
        engine.dispose()


def in_process(side: str, url: URL, count: int) -> float:
    env = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False)}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_validator", side, str(count)], env=env, check=True
    )
    return time.perf_counter() - start


def result(
    name: str, a: list[float], b: list[float], count: int, extra: dict[str, Any], speedup: float
) -> BenchResult:
    ratio = round(statistics.median(a) / statistics.median(b), 3)
    spread = paired(a, b)  # held only when the whole interval of per-run ratios meets the target
    return BenchResult(
        name=name,
        unit="s",
        ours=Stats.of(a),
        baseline=Stats.of(b),
        baseline_name="alembic compare_metadata",
        ratio=ratio,
        target=f">= {speedup:g}x faster than compare_metadata"
        if speedup > 1
        else "context figure: faster at all",
        holds=judge(spread.low, spread.high, at_most=1 / speedup),
        extra={"tables": count, "speedup": round(1 / ratio, 2), "paired_ratio": spread.as_json(), **extra},
    )


def run(ctx: BenchContext) -> list[BenchResult]:
    count = QUICK_TABLES if ctx.quick else FULL_TABLES
    meta = synthetic_models(count)
    url = ctx.fresh_database("bench_validator")
    sizes: dict[str, int] = {}

    def ours() -> float:
        start = time.perf_counter()
        sizes["findings"] = validate_once(url, meta)
        return time.perf_counter() - start

    def baseline() -> float:
        start = time.perf_counter()
        sizes["alembic_diffs"] = compare_once(url, meta)
        return time.perf_counter() - start

    try:
        create_schema(url, meta)
        library = interleave(ours, baseline, runs=ctx.runs)
        # Three processes in turn (A B C A B C ...): ours, Alembic's, and the floor both stand
        # on — interpreter start, importing SQLAlchemy, building the same Table objects, and
        # no comparison at all. The first round warms the caches and is not counted.
        rounds = [
            tuple(in_process(side, url, count) for side in ("ours", "alembic", "floor"))
            for _ in range(ctx.runs + 1)
        ][1:]
        process = ([r[0] for r in rounds], [r[1] for r in rounds])
        floor = [r[2] for r in rounds]
    finally:
        drop_database(ctx, url)
    return [
        # The target is on the whole process: interpreter start, imports and building
        # the 1,000-table models are paid by both sides and count.
        result(
            f"validate-schema whole process, {count} tables",
            *process,
            count,
            {
                "note": "each side in a fresh Python process that builds the same models",
                "floor_s": Stats.of(floor).__dict__,
                "best_possible_speedup": round(statistics.median(process[1]) / statistics.median(floor), 2),
            },
            TARGET_SPEEDUP,
        ),
        # Context: the comparison itself, with the models already built, in one process.
        result(
            f"validate-schema library call, {count} tables",
            *library,
            count,
            sizes,
            TARGET_SPEEDUP,
        ),
    ]


def main() -> None:
    """One side, in a process of its own: ``python -m benchmarks.bench_validator ours|alembic N``."""
    side, count = sys.argv[1], int(sys.argv[2])
    meta = synthetic_models(count)
    url = os.environ["DATABASE_URL"]
    if side == "floor":
        return
    found = validate_once(url, meta) if side == "ours" else compare_once(url, meta)
    if found:
        raise SystemExit(f"{side} found {found} differences in an unchanged schema")


if __name__ == "__main__":
    main()
