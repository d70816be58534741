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
- with a streaming hot standby attached (benchmarks/standby.py, its own primary): ours as it
  runs by default (adaptive batch size, pausing on replica lag), against the same backfill
  at a fixed batch size with no health checks; throughput ratio, and the largest replay lag
  of the standby (bytes and seconds) sampled every 50 ms from pg_stat_replication during
  each run. Before each run the table is reloaded and the standby has replayed the reload.
- the guide's loop, as written (``WHERE id IN (SELECT id ... WHERE difficulty < 2.0 LIMIT
  1000)``, ``pg_sleep(0.1)``, all in one transaction): it never finishes (negative values keep
  matching), so it is capped at ``GUIDE_ITERATIONS`` iterations and rolled back; its figure
  is updates per second, revisits included.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine

from benchmarks.harness import BenchContext, BenchResult, Stats, interleave, judge, median_interval, paired
from benchmarks.standby import StandbyPair, standby_pair
from scripts import backfill
from scripts.backfill.health import HealthLimits
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
# Fifteen pairs against the single UPDATE: five leave the sign-test interval at the min-max of
# the per-run ratios (0.815-0.948 around a 0.898 median on 2026-12-02), and nine still read
# "undecided" in one run of two (0.841-0.922 around 0.875): the ratio sits about 5% above its
# line with about 5% noise per pair. Fifteen take the 4th and 12th of the ordered ratios.
THROUGHPUT_RUNS = 15
TARGET_BATCH_MS = 150.0
REPLICA_ROWS = 1_000_000
QUICK_REPLICA_ROWS = 200_000
REPLICA_RUNS = 2  # each run reloads 1M rows and lets the standby replay them: minutes, not seconds
TARGET_REPLICA_RATIO = 0.8
SAMPLE_S = 0.05

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


@dataclass
class _LagSampler:
    """The largest replay lag of any standby while it runs (a thread polling the primary)."""

    engine: Engine
    max_bytes: int = 0
    max_s: float = 0.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        query = text(
            "SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0),"
            " coalesce(max(extract(epoch FROM replay_lag)), 0) FROM pg_stat_replication"
        )
        with self.engine.connect() as conn:
            while not self._stop.is_set():
                lag_bytes, lag_s = conn.execute(query).one()
                conn.rollback()
                self.max_bytes = max(self.max_bytes, int(lag_bytes))
                self.max_s = max(self.max_s, float(lag_s))
                self._stop.wait(SAMPLE_S)

    def __enter__(self) -> _LagSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def _replica_results(ctx: BenchContext) -> list[BenchResult]:
    rows = QUICK_REPLICA_ROWS if ctx.quick else REPLICA_ROWS
    with standby_pair(database="bench_replica") as pair:
        return _measure_with_standby(pair, rows)


def _measure_with_standby(pair: StandbyPair, rows: int) -> list[BenchResult]:
    url = pair.primary_url
    engine = make_engine(url)
    lag_bytes: dict[str, list[int]] = {"ours": [], "fixed": []}
    lag_s: dict[str, list[float]] = {"ours": [], "fixed": []}
    pauses: list[int] = []
    sizes: list[int] = []
    limits = HealthLimits()
    fixed = backfill.BatchOptions(batch_size=backfill.DEFAULT_BATCH_SIZE, health=HealthLimits(enabled=False))

    def measured(label: str, options: backfill.BatchOptions) -> float:
        matching = _reset(engine)
        pair.wait_for_replay()  # the standby starts each run caught up
        with _LagSampler(engine) as sampler:
            started = time.perf_counter()
            result = backfill.batch_update(
                url, table=TABLE, set_=SET, where=WHERE, name=uuid.uuid4().hex, options=options
            )
            elapsed = time.perf_counter() - started
        assert result.outcome == "finished" and result.rows_updated == matching
        lag_bytes[label].append(sampler.max_bytes)
        lag_s[label].append(sampler.max_s)
        if label == "ours":
            pauses.append(result.pauses)
            sizes.append(result.last_batch_size)
        return matching / elapsed

    try:
        _create(engine, rows)
        ours, baseline = interleave(
            lambda: measured("ours", backfill.BatchOptions()),
            lambda: measured("fixed", fixed),
            runs=REPLICA_RUNS,
            warmup=0,
        )
    finally:
        engine.dispose()
    ratio = Stats.of(ours).median / Stats.of(baseline).median
    worst_bytes, worst_s = max(lag_bytes["ours"]), max(lag_s["ours"])
    within = worst_bytes <= limits.max_replay_lag_bytes and worst_s <= limits.max_replay_lag_s
    return [
        BenchResult(
            name=f"batch-update with a streaming standby, {rows} rows, adaptive + lag-aware",
            unit="rows/s",
            ours=Stats.of(ours),
            baseline=Stats.of(baseline),
            baseline_name=f"fixed batch size {backfill.DEFAULT_BATCH_SIZE}, no health checks",
            ratio=round(ratio, 3),
            target=f">= {TARGET_REPLICA_RATIO}x fixed, standby lag under the limits throughout",
            holds=ratio >= TARGET_REPLICA_RATIO and within,
            extra={
                "max_replay_lag_mb_ours": round(worst_bytes / 1024**2, 2),
                "max_replay_lag_s_ours": round(worst_s, 3),
                "max_replay_lag_mb_fixed": round(max(lag_bytes["fixed"]) / 1024**2, 2),
                "max_replay_lag_s_fixed": round(max(lag_s["fixed"]), 3),
                "lag_limits_mb_s": [limits.max_replay_lag_bytes / 1024**2, limits.max_replay_lag_s],
                "pauses_ours": max(pauses),
                "adaptive_last_batch_size": sizes,
                "runs_each": REPLICA_RUNS,
            },
        )
    ]


def run(ctx: BenchContext) -> list[BenchResult]:
    return [*_single_server_results(ctx), *_replica_results(ctx)]


def _single_server_results(ctx: BenchContext) -> list[BenchResult]:
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

        ours_vs_single, single = interleave(ours, single_update, runs=THROUGHPUT_RUNS)
        ours_vs_guide, guide = interleave(ours, guide_loop, runs=ctx.runs)
    finally:
        engine.dispose()

    ours_all = ours_vs_single + ours_vs_guide
    ratio = Stats.of(ours_vs_single).median / Stats.of(single).median
    worst_batch = max(longest_ms)
    # Each run's longest batch is what that run held row locks for; the target holds when the
    # sign-test interval of their median is within it (like every ratio in the table), so one
    # run stalled by the machine (a checkpoint's fsync) is reported, not the verdict.
    longest_low, longest_high, longest_confidence = median_interval(longest_ms)
    throughput = paired(ours_vs_single, single)
    return [
        BenchResult(
            name=f"batch-update throughput, {rows} rows, default batch size",
            unit="rows/s",
            ours=Stats.of(ours_vs_single),
            baseline=Stats.of(single),
            baseline_name="single UPDATE (one transaction)",
            ratio=round(ratio, 3),
            target=f">= {TARGET_RATIO}x single UPDATE",
            holds=judge(throughput.low, throughput.high, at_least=TARGET_RATIO),
            extra={
                "paired_ratio": throughput.as_json(),
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
            target=f"a run's longest batch <= {TARGET_BATCH_MS:.0f} ms (interval of the runs' median)",
            holds=judge(longest_low, longest_high, at_most=TARGET_BATCH_MS),
            extra={
                "longest_batch_ms": round(worst_batch, 1),
                "per_run_longest_ms": [round(ms, 1) for ms in longest_ms],
                "median_interval_ms": [round(longest_low, 1), round(longest_high, 1)],
                "confidence": round(longest_confidence, 3),
            },
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
