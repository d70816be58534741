"""Batched data migration throughput: our helper vs a single UPDATE (the ceiling) and the guide's loop.

The change is the guide's: ``SET difficulty = difficulty * 1.1 WHERE difficulty < 2.0`` on a
table of ``ROWS`` rows (bigint key, difficulty spread over [-3, 3], a text column so rows have
a realistic width). Before every measured run the table is reloaded from a pristine copy,
vacuumed, analysed and checkpointed (untimed), so every run starts from the same pages.

- ours: ``backfill.batch_update`` with its default batch size and pause; rows updated per
  second of wall time (validation, checkpoint table and all), and the longest batch (ms) —
  how long a batch holds its row locks.
- single UPDATE: one statement, one transaction: the ceiling on throughput, holding every
  row lock until the end.
- the guide's loop, as written (``WHERE id IN (SELECT id ... WHERE difficulty < 2.0 LIMIT
  1000)``, ``pg_sleep(0.1)``, all in one transaction): it never finishes (negative values keep
  matching), so it is capped at ``GUIDE_ITERATIONS`` iterations and rolled back; its figure
  is updates per second, revisits included.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import text
from sqlalchemy.engine import Engine

from benchmarks.harness import BenchContext, BenchResult, Stats, interleave, paired
from scripts import backfill
from scripts.db.engine import make_engine

ROWS = 1_000_000
# --quick keeps the full size: per-batch overheads weigh more on fewer rows, and at 200,000
# rows the throughput verdict differed from the full run's.
QUICK_ROWS = ROWS
TABLE = "bench_backfill"
PRISTINE = "bench_backfill_pristine"
SET = "difficulty = difficulty * 1.1"
WHERE = "difficulty < 2.0"
GUIDE_BATCH = 1000
GUIDE_PAUSE_S = 0.1
GUIDE_ITERATIONS = 30
TARGET_RATIO = 0.85
TARGET_BATCH_MS = 150.0

GUIDE_UPDATE = text(
    "UPDATE bench_backfill SET difficulty = difficulty * 1.1"
    " WHERE id IN (SELECT id FROM bench_backfill WHERE difficulty < 2.0 LIMIT :n)"
)


def _create(engine: Engine, rows: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE bench_backfill_pristine (id bigint PRIMARY KEY, difficulty float8 NOT NULL,"
                " stem text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())"
            )
        )
        conn.execute(
            text(
                "INSERT INTO bench_backfill_pristine (id, difficulty, stem)"
                " SELECT i, -3 + 6.0 * ((i::bigint * 7919) % :n) / :n, repeat('x', 60) || i"
                " FROM generate_series(1, :n) AS i"
            ),
            {"n": rows},
        )
        conn.execute(text("CREATE TABLE bench_backfill (LIKE bench_backfill_pristine INCLUDING ALL)"))


def _reset(engine: Engine) -> int:
    """The table as loaded, vacuumed and analysed; returns the rows the change matches."""
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE bench_backfill"))
        conn.execute(text("INSERT INTO bench_backfill SELECT * FROM bench_backfill_pristine"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE bench_backfill"))
        conn.execute(text("CHECKPOINT"))  # no checkpoint of the reload lands inside a measurement
        return int(conn.scalar(text("SELECT count(*) FROM bench_backfill WHERE difficulty < 2.0")) or 0)


def run(ctx: BenchContext) -> list[BenchResult]:
    rows = QUICK_ROWS if ctx.quick else ROWS
    url = ctx.fresh_database("bench_backfill")
    engine = make_engine(url)
    longest_ms: list[float] = []
    batches: list[int] = []
    guide_rows: list[int] = []
    single_ms: list[float] = []
    try:
        _create(engine, rows)

        def ours() -> float:
            matching = _reset(engine)
            started = time.perf_counter()
            result = backfill.batch_update(url, table=TABLE, set_=SET, where=WHERE, name=uuid.uuid4().hex)
            elapsed = time.perf_counter() - started
            assert result.outcome == "finished" and result.rows_updated == matching
            longest_ms.append(result.longest_batch_ms)
            batches.append(result.batches)
            return matching / elapsed

        def single_update() -> float:
            matching = _reset(engine)
            started = time.perf_counter()
            with engine.begin() as conn:
                updated = conn.execute(text("UPDATE bench_backfill SET " + SET + " WHERE " + WHERE)).rowcount
            elapsed = time.perf_counter() - started
            assert updated == matching
            single_ms.append(elapsed * 1000)
            return matching / elapsed

        def guide_loop() -> float:
            _reset(engine)
            total = 0
            started = time.perf_counter()
            with engine.connect() as conn:
                for _ in range(GUIDE_ITERATIONS):
                    updated = conn.execute(GUIDE_UPDATE, {"n": GUIDE_BATCH}).rowcount
                    total += updated
                    if updated == 0:
                        break
                    conn.execute(text("SELECT pg_sleep(:s)"), {"s": GUIDE_PAUSE_S})
                elapsed = time.perf_counter() - started
                conn.rollback()  # it never commits: one transaction holding every lock it took
            guide_rows.append(total)
            return total / elapsed

        ours_vs_single, single = interleave(ours, single_update, runs=ctx.runs)
        ours_vs_guide, guide = interleave(ours, guide_loop, runs=ctx.runs)
    finally:
        engine.dispose()

    ours_all = ours_vs_single + ours_vs_guide
    ratio = Stats.of(ours_vs_single).median / Stats.of(single).median
    worst_batch = max(longest_ms)
    return [
        BenchResult(
            name=f"batch-update throughput, {rows} rows, default batch size",
            unit="rows/s",
            ours=Stats.of(ours_vs_single),
            baseline=Stats.of(single),
            baseline_name="single UPDATE (one transaction)",
            ratio=round(ratio, 3),
            target=f">= {TARGET_RATIO}x single UPDATE",
            holds=paired(ours_vs_single, single).low >= TARGET_RATIO,
            extra={
                "paired_ratio": paired(ours_vs_single, single).as_json(),
                "batch_size": backfill.DEFAULT_BATCH_SIZE,
                "batches_per_run": max(batches),
                "longest_batch_ms": round(worst_batch, 1),
            },
        ),
        BenchResult(
            name=f"batch-update longest batch, {rows} rows",
            unit="ms",
            ours=Stats.of(longest_ms),
            baseline=Stats.of(single_ms),
            baseline_name="single UPDATE duration (its row locks are held that long)",
            ratio=round(Stats.of(longest_ms).median / Stats.of(single_ms).median, 4),
            target=f"no batch longer than {TARGET_BATCH_MS:.0f} ms",
            holds=worst_batch <= TARGET_BATCH_MS,
            extra={"longest_batch_ms": round(worst_batch, 1)},
        ),
        BenchResult(
            name=f"batch-update vs the guide's loop, {rows} rows",
            unit="rows/s",
            ours=Stats.of(ours_vs_guide),
            baseline=Stats.of(guide),
            baseline_name=(
                f"guide's loop, capped at {GUIDE_ITERATIONS} iterations of {GUIDE_BATCH}"
                f" (it never finishes; updates/s, revisits included)"
            ),
            ratio=round(Stats.of(ours_vs_guide).median / Stats.of(guide).median, 2),
            target="finishes, each row once",
            holds=True,
            extra={
                "guide_updates_per_capped_run": max(guide_rows),
                "ours_median_all_runs": round(Stats.of(ours_all).median),
            },
        ),
    ]
