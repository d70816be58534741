"""validate-schema against Alembic's compare_metadata on a synthetic 1,000-table schema.

Each table has a primary key, a foreign key to the previous table, two indexes and a CHECK
(its bound differs per table, so no two CHECKs are alike). The schema is created once in a
fresh database from a MetaData; both sides then compare that same MetaData with the same
database, alternating (harness.interleave).

Ours is the library call ``scripts.validate.validate_schema(url, metadata)`` — the whole of
what the command does after argument parsing: connect, read the catalog, normalise the
models' expressions on the server, compare, build the report. The revision-owned objects
(triggers, views...) of the real project are left out (``OwnedObjects()``): the synthetic
database has none. The baseline is ``alembic.autogenerate.compare_metadata`` with the
options the project's autogenerate uses (compare_type, compare_server_default), on a new
connection each run, as ours makes one.
"""

from __future__ import annotations

import statistics
import time

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

from benchmarks.harness import BenchContext, BenchResult, Stats, interleave
from models.base import NAMING_CONVENTION

FULL_TABLES = 1000
QUICK_TABLES = 200
TARGET_SPEEDUP = 3.0


def synthetic_models(count: int) -> MetaData:
    """``count`` tables, each with a PK, an FK, two indexes and a CHECK."""
    meta = MetaData(naming_convention=NAMING_CONVENTION)
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
    from scripts.db import make_engine

    engine = make_engine(url)
    tables = meta.sorted_tables
    try:
        for start in range(0, len(tables), CREATE_BATCH):
            with engine.begin() as conn:
                meta.create_all(conn, tables=tables[start : start + CREATE_BATCH], checkfirst=False)
    finally:
        engine.dispose()


def drop_database(ctx: BenchContext, url: URL) -> None:
    from scripts.db import make_engine

    engine = make_engine(ctx.admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(str(url.database))
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        engine.dispose()


def run(ctx: BenchContext) -> list[BenchResult]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from scripts.db import make_engine
    from scripts.validate import OwnedObjects, validate_schema

    count = QUICK_TABLES if ctx.quick else FULL_TABLES
    meta = synthetic_models(count)
    url = ctx.fresh_database("bench_validator")
    try:
        create_schema(url, meta)
        sizes: dict[str, int] = {}

        def ours() -> float:
            start = time.perf_counter()
            report = validate_schema(url, meta, owned=OwnedObjects())
            elapsed = time.perf_counter() - start
            sizes["findings"] = len(report.findings)
            return elapsed

        def baseline() -> float:
            start = time.perf_counter()
            engine = make_engine(url)
            with engine.connect() as conn:
                context = MigrationContext.configure(
                    conn, opts={"compare_type": True, "compare_server_default": True}
                )
                diffs = compare_metadata(context, meta)
            engine.dispose()
            elapsed = time.perf_counter() - start
            sizes["alembic_diffs"] = len(diffs)
            return elapsed

        a, b = interleave(ours, baseline, runs=ctx.runs)
    finally:
        drop_database(ctx, url)
    ratio = statistics.median(a) / statistics.median(b)
    return [
        BenchResult(
            name=f"validate-schema (library call) on {count} tables",
            unit="s",
            ours=Stats.of(a),
            baseline=Stats.of(b),
            baseline_name="alembic compare_metadata",
            ratio=ratio,
            target=f">= {TARGET_SPEEDUP:g}x faster than compare_metadata",
            holds=ratio <= 1 / TARGET_SPEEDUP,
            extra={"tables": count, "speedup": 1 / ratio, **sizes},
        )
    ]
