"""COPY throughput into the partitioned ``attempts`` against an unpartitioned twin.

The database is migrated to head; ``attempts_twin`` is then built from the catalog so that
it carries everything ``attempts`` carries, minus the partitioning:

- the same columns, types, defaults and NOT NULLs, the primary key (id, attempted_at) and the
  CHECK constraints (``LIKE attempts INCLUDING ALL``);
- the same four secondary indexes (also from LIKE: user_id/attempted_at DESC,
  item_id/attempted_at, session_id, BRIN on attempted_at);
- the same three foreign keys (users, items, learning_sessions; from pg_get_constraintdef);
- the same two triggers that fire on the partitions (append-only, active item required; from
  pg_get_triggerdef), so every copied batch runs the active-item check and every row three FK
  checks on both sides.

Both receive the very same CSV (ids included), ``ROWS`` attempts spread over 2025 and 2026
(two yearly partitions), in two orders: by time (an export or a replay) and shuffled (the
worst case for routing: consecutive rows alternate between partitions). Before each measured
run the target is truncated and a CHECKPOINT taken (untimed); the timed part is the COPY and
its commit. Figure: rows per second; ours and the twin alternate (harness.interleave).
Beside it (``extra``): the median of per-pair ratios, and the ratio of the server backend's
CPU seconds for the COPY (from /proc), which a busy machine disturbs far less than wall time.
"""

from __future__ import annotations

import csv
import io
import os
import random
import re
import statistics
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from psycopg2 import sql
from sqlalchemy import text
from sqlalchemy.engine import Engine

from benchmarks.attempt_rows import attempt_record
from benchmarks.harness import BenchContext, BenchResult, Stats, interleave, judge, paired
from scripts.db.engine import make_engine
from scripts.migrations import api as migrations

ROWS = 50_000
# --quick keeps the full size: at 10,000 rows the ratio's spread crossed the target in one run
# or the other (time-ordered in one, shuffled in the next) while the full run held both.
QUICK_ROWS = ROWS
# More pairs than the harness's minimum: each COPY runs per-row triggers and FK checks (CPU
# bound), so a busy machine shows up as run-to-run noise; more pairs steady the medians.
MIN_RUNS = 15
USERS = 500
ITEMS = 200
SEED = 20251125
PARTITIONED = "attempts"
TWIN = "attempts_twin"
TARGET_RATIO = 0.9
SPAN_START = datetime(2025, 1, 1, tzinfo=timezone.utc)
SPAN = timedelta(days=730)  # 2025 and 2026: two yearly partitions
TWIN_DESCRIPTION = "unpartitioned twin (same columns, PK, 2 CHECKs, 3 FKs, 4 indexes, 2 triggers)"
COLUMNS = ("id", "attempted_at", "user_id", "item_id", "is_correct", "score", "response_time_ms", "answer")
_TRIGGER_TARGET = re.compile(r"\bON (?:public\.)?attempts\b")


def _build_twin(engine: Engine) -> None:
    with engine.begin() as conn:
        prep = conn.dialect.identifier_preparer
        twin = prep.quote(TWIN)
        conn.execute(text(f"CREATE TABLE {twin} (LIKE {prep.quote(PARTITIONED)} INCLUDING ALL)"))
        for name, definition in conn.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = 'attempts'::regclass AND contype = 'f' ORDER BY conname"
            )
        ):
            conn.execute(text(f"ALTER TABLE {twin} ADD CONSTRAINT {prep.quote(name)} {definition}"))
        for (definition,) in conn.execute(
            text(
                # the triggers that fire on the partitions: not those whose clones are all
                # disabled (a per-row check replaced by a per-statement one, revision 0005)
                "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t"
                " WHERE t.tgrelid = 'attempts'::regclass AND NOT t.tgisinternal AND NOT EXISTS"
                " (SELECT 1 FROM pg_trigger c WHERE c.tgparentid = t.oid AND c.tgenabled = 'D')"
                " ORDER BY t.tgname"
            )
        ):
            # the catalog's own definition, pointed at the twin
            conn.execute(text(_TRIGGER_TARGET.sub(f"ON {twin}", definition, count=1)))
        counts = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM pg_index WHERE indrelid = t.oid),"
                " (SELECT count(*) FROM pg_constraint WHERE conrelid = t.oid AND contype = 'c'),"
                " (SELECT count(*) FROM pg_constraint WHERE conrelid = t.oid AND contype = 'f'),"
                " (SELECT count(*) FROM pg_trigger WHERE tgrelid = t.oid AND NOT tgisinternal)"
                " FROM (SELECT CAST(:t AS regclass) AS oid) AS t"
            ),
            {"t": TWIN},
        ).one()
        # PK + 4 indexes, 2 CHECKs, 3 FKs, 2 triggers: the twin is what the docstring says
        assert tuple(counts) == (5, 2, 3, 2), counts


def _seed_people(engine: Engine) -> tuple[list[str], list[str]]:
    with engine.begin() as conn:
        users = conn.execute(
            text(
                "INSERT INTO users (email) SELECT 'learner' || n || '@example.com'"
                " FROM generate_series(1, :n) AS n RETURNING id::text"
            ),
            {"n": USERS},
        ).scalars()
        user_ids = list(users)
        items = conn.execute(
            text(
                "INSERT INTO items (item_type, status, stem, difficulty)"
                " SELECT 'multiple_choice', 'active', 'item ' || n, ((n % 100) - 50) / 20.0"
                " FROM generate_series(1, :n) AS n RETURNING id::text"
            ),
            {"n": ITEMS},
        ).scalars()
        return user_ids, list(items)


def _csv(rows: int, users: list[str], items: list[str], *, shuffled: bool) -> bytes:
    rng = random.Random(SEED)
    step = SPAN / rows
    records = []
    for n in range(rows):
        at = SPAN_START + step * n
        records.append(attempt_record(rng, at, users, items))
    if shuffled:
        rng.shuffle(records)
    out = io.StringIO()
    csv.writer(out).writerows(records)
    return out.getvalue().encode()


def _backend_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a server backend (Linux /proc; None where unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[11], fields[12]: utime, stime (stat(5) fields 14 and 15), in clock ticks
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _copy_rate(engine: Engine, table: str, payload: bytes, rows: int, cpu: list[float]) -> float:
    """Rows per second of one COPY (and its commit) into an emptied ``table``; the server
    backend's CPU seconds for it are appended to ``cpu`` (less sensitive to a busy machine)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"TRUNCATE {conn.dialect.identifier_preparer.quote(table)}"))
        conn.execute(text("CHECKPOINT"))
    raw = engine.raw_connection()
    try:
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
        )
        with raw.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid_row = cur.fetchone()
            assert pid_row is not None
            raw.commit()
            cpu_before = _backend_cpu_s(pid_row[0])
            started = time.perf_counter()
            cur.copy_expert(statement, io.BytesIO(payload))
            raw.commit()
            elapsed = time.perf_counter() - started
            cpu_after = _backend_cpu_s(pid_row[0])
            if cpu_before is not None and cpu_after is not None:
                cpu.append(cpu_after - cpu_before)
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            row = cur.fetchone()
            assert row is not None and row[0] == rows, (table, row)
    finally:
        raw.close()
    return rows / elapsed


def run(ctx: BenchContext) -> list[BenchResult]:
    rows = QUICK_ROWS if ctx.quick else ROWS
    url = ctx.fresh_database("bench_partitions")
    migrations.upgrade(url)
    engine = make_engine(url)
    results: list[BenchResult] = []
    try:
        _build_twin(engine)
        users, items = _seed_people(engine)
        for order, shuffled in (("time-ordered", False), ("shuffled", True)):
            payload = _csv(rows, users, items, shuffled=shuffled)
            runs = max(ctx.runs, MIN_RUNS)
            ours_cpu: list[float] = []
            twin_cpu: list[float] = []
            ours, twin = interleave(
                lambda p=payload, c=ours_cpu: _copy_rate(engine, PARTITIONED, p, rows, c),
                lambda p=payload, c=twin_cpu: _copy_rate(engine, TWIN, p, rows, c),
                runs=runs,
            )
            # the warm-up runs are in the CPU lists too: drop them
            ours_cpu, twin_cpu = ours_cpu[-runs:], twin_cpu[-runs:]
            cpu_ratio = (
                statistics.median(twin_cpu) / statistics.median(ours_cpu)
                if len(ours_cpu) == runs and len(twin_cpu) == runs
                else None
            )
            ratio = Stats.of(ours).median / Stats.of(twin).median
            # each run's ratio to the twin run right after it: robust to slow drift of the machine
            paired_median = statistics.median(a / b for a, b in zip(ours, twin, strict=True))
            spread = paired(ours, twin)
            results.append(
                BenchResult(
                    name=f"partitions.copy_attempts_{order.replace('-', '_')}",
                    unit="rows/s",
                    ours=Stats.of(ours),
                    baseline=Stats.of(twin),
                    baseline_name=TWIN_DESCRIPTION,
                    ratio=round(ratio, 3),
                    target=f"partitioned >= {TARGET_RATIO}x twin rows/s",
                    holds=judge(spread.low, spread.high, at_least=TARGET_RATIO),
                    extra={
                        "rows": rows,
                        "order": order,
                        "partitions_written": 2,
                        "runs": runs,
                        "paired_ratio_median": round(paired_median, 3),
                        "paired_ratio": spread.as_json(),
                        # twin's backend CPU seconds / ours: rows per CPU second, ours vs twin
                        "backend_cpu_ratio": None if cpu_ratio is None else round(cpu_ratio, 3),
                        "backend_cpu_s_median": None
                        if cpu_ratio is None
                        else {"ours": statistics.median(ours_cpu), "twin": statistics.median(twin_cpu)},
                    },
                )
            )
    finally:
        engine.dispose()
    return results
