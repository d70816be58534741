"""The attempts write path: what the integrity checks cost against a plain table (the floor).

Two databases, one migrated to head, one to 0004 (0003's per-row active-item trigger, before
revision 0005 checked whole statements). In each, the application writes ``ROWS`` attempts
in batches of ``BATCH`` rows, one statement and one commit per batch, into the current year's
partition, with every constraint and trigger active (PK, 2 CHECKs, 3 FKs, 4 indexes, the
append-only and active-item triggers):

- INSERT: one multi-row ``INSERT ... VALUES`` per batch (the SQL text is built before timing,
  so the client's quoting is not counted);
- COPY: one ``COPY ... FROM STDIN`` per batch.

The floor: COPY of the same batches into ``attempts_plain``, an unpartitioned table with the
same columns and only the primary key. Target: each write path at head >= 0.5x the floor's
rows/s. Each run writes every variant once, in turn, so machine drift hits all alike; the
figure is rows/s; ``extra`` has each variant at 0004, COPY with no active-item check at all
(the most any design of that check could reach), and the spread of per-run paired ratios
(benchmarks.harness.paired), from which ``holds`` is judged.
"""

from __future__ import annotations

import io
import random
import time
from datetime import datetime, timedelta, timezone

from psycopg2 import sql
from sqlalchemy import text
from sqlalchemy.engine import Engine

from benchmarks.attempt_rows import attempt_record
from benchmarks.harness import BenchContext, BenchResult, Stats, judge, paired
from scripts.db.engine import make_engine
from scripts.migrations import api as migrations

BATCH = 1000
ROWS = 50_000
QUICK_ROWS = 20_000
RUNS = 9
QUICK_RUNS = 7
USERS, ITEMS = 500, 200
SEED = 20261201
TARGET_RATIO = 0.5
BEFORE = "0004"  # the revision before per-statement checks (0003's per-row trigger)
PLAIN = "attempts_plain"
COLUMNS = ("id", "attempted_at", "user_id", "item_id", "is_correct", "score", "response_time_ms", "answer")
YEAR = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _prepare(engine: Engine) -> tuple[list[str], list[str]]:
    with engine.begin() as conn:
        prep = conn.dialect.identifier_preparer
        conn.execute(
            text(
                f"CREATE TABLE {prep.quote(PLAIN)} (LIKE attempts INCLUDING DEFAULTS,"
                " PRIMARY KEY (id, attempted_at))"
            )
        )
        users = list(
            conn.execute(
                text(
                    "INSERT INTO users (email) SELECT 'learner' || n || '@example.com'"
                    " FROM generate_series(1, :n) AS n RETURNING id::text"
                ),
                {"n": USERS},
            ).scalars()
        )
        items = list(
            conn.execute(
                text(
                    "INSERT INTO items (item_type, status, stem)"
                    " SELECT 'multiple_choice', 'active', 'item ' || n"
                    " FROM generate_series(1, :n) AS n RETURNING id::text"
                ),
                {"n": ITEMS},
            ).scalars()
        )
    return users, items


def _batches(rows: int, users: list[str], items: list[str]) -> list[list[tuple[str, ...]]]:
    rng = random.Random(SEED)
    records = []
    for n in range(rows):
        at = YEAR + timedelta(seconds=n * 60 + rng.randint(0, 59))
        records.append(attempt_record(rng, at, users, items))
    return [records[i : i + BATCH] for i in range(0, rows, BATCH)]


class Writer:
    """One connection writing the same batches into one table, by COPY or INSERT."""

    def __init__(self, engine: Engine, table: str, batches: list[list[tuple[str, ...]]]) -> None:
        self.engine, self.table, self.rows = engine, table, sum(len(b) for b in batches)
        self.raw = engine.raw_connection()
        target = sql.SQL("{} ({})").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
        )
        with self.raw.cursor() as cur:
            self.copy = sql.SQL("COPY {} FROM STDIN").format(target).as_string(cur)
            row = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
            head = sql.SQL("INSERT INTO {} VALUES ").format(target).as_string(cur)
            self.inserts = [head + ",".join(cur.mogrify(row, r).decode() for r in batch) for batch in batches]
        self.payloads = ["".join("\t".join(r) + "\n" for r in batch) for batch in batches]
        self.raw.commit()

    def _empty(self) -> None:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"TRUNCATE {conn.dialect.identifier_preparer.quote(self.table)}"))

    def copy_rate(self) -> float:
        self._empty()
        with self.raw.cursor() as cur:
            started = time.perf_counter()
            for payload in self.payloads:
                cur.copy_expert(self.copy, io.StringIO(payload))
                self.raw.commit()
            return self.rows / (time.perf_counter() - started)

    def insert_rate(self) -> float:
        self._empty()
        with self.raw.cursor() as cur:
            started = time.perf_counter()
            for statement in self.inserts:
                cur.execute(statement)
                self.raw.commit()
            return self.rows / (time.perf_counter() - started)

    def close(self) -> None:
        self.raw.close()


def run(ctx: BenchContext) -> list[BenchResult]:
    rows, runs = (QUICK_ROWS, QUICK_RUNS) if ctx.quick else (ROWS, RUNS)
    head_url, before_url = ctx.fresh_database("bench_write_head"), ctx.fresh_database("bench_write_0004")
    unchecked_url = ctx.fresh_database("bench_write_no_item_check")
    migrations.upgrade(head_url)
    migrations.upgrade(before_url, BEFORE)
    migrations.upgrade(unchecked_url)
    engines = [make_engine(head_url), make_engine(before_url), make_engine(unchecked_url)]
    writers: list[Writer] = []
    try:
        users, items = _prepare(engines[0])
        batches = _batches(rows, users, items)
        floor = Writer(engines[0], PLAIN, batches)
        head = Writer(engines[0], "attempts", batches)
        # the same people in both databases, so the same batches fit both
        before_users, before_items = _copy_people(engines[0], engines[1])
        assert (before_users, before_items) == (len(users), len(items))
        before = Writer(engines[1], "attempts", batches)
        _copy_people(engines[0], engines[2])
        _drop_item_checks(engines[2])
        unchecked = Writer(engines[2], "attempts", batches)
        writers = [floor, head, before, unchecked]
        variants = {
            "floor": floor.copy_rate,
            "copy": head.copy_rate,
            "insert": head.insert_rate,
            "copy_0004": before.copy_rate,
            "insert_0004": before.insert_rate,
            "copy_no_item_check": unchecked.copy_rate,
        }
        figures: dict[str, list[float]] = {name: [] for name in variants}
        for n in range(runs + 1):  # the first round warms up and is dropped
            for name, measure in variants.items():
                rate = measure()
                if n:
                    figures[name].append(rate)
    finally:
        for writer in writers:
            writer.close()
        for engine in engines:
            engine.dispose()
    results = []
    for path in ("insert", "copy"):
        spread = paired(figures[path], figures["floor"])
        before_ratio = paired(figures[f"{path}_0004"], figures["floor"])
        ceiling = paired(figures["copy_no_item_check"], figures["floor"])
        results.append(
            BenchResult(
                name=f"attempts write path, {path.upper()} in batches of {BATCH:,} rows",
                unit="rows/s",
                ours=Stats.of(figures[path]),
                baseline=Stats.of(figures["floor"]),
                baseline_name="COPY into a plain twin with only the PK (the floor)",
                ratio=round(spread.median, 3),
                target=f">= {TARGET_RATIO}x the floor's rows/s",
                holds=judge(spread.low, spread.high, at_least=TARGET_RATIO),
                extra={
                    "rows": rows,
                    "runs": runs,
                    "paired_ratio": spread.as_json(),
                    f"at_{BEFORE}_rows_s": Stats.of(figures[f"{path}_0004"]).__dict__,
                    f"at_{BEFORE}_paired_ratio": before_ratio.as_json(),
                    # attempts with every constraint but no active-item check at all: the most any
                    # design of that check can reach; the rest is the 3 FKs' per-row lookups
                    # (PostgreSQL's RI triggers are row triggers) and the 4 secondary indexes
                    "copy_without_item_check_paired_ratio": ceiling.as_json(),
                },
            )
        )
    return results


def _copy_people(source: Engine, target: Engine) -> tuple[int, int]:
    """The users and items of ``source``, same ids, into ``target``."""
    with source.connect() as conn:
        users = conn.execute(text("SELECT id, email FROM users")).all()
        items = conn.execute(text("SELECT id, item_type::text, status::text, stem FROM items")).all()
    with target.begin() as conn:
        conn.execute(
            text("INSERT INTO users (id, email) VALUES (:id, :email)"), [dict(r._mapping) for r in users]
        )
        conn.execute(
            text(
                "INSERT INTO items (id, item_type, status, stem) VALUES"
                " (:id, CAST(:item_type AS item_type), CAST(:status AS item_status), :stem)"
            ),
            [dict(r._mapping) for r in items],
        )
    return len(users), len(items)


def _drop_item_checks(engine: Engine) -> None:
    """Drop every active-item trigger (parent and partitions) in the ceiling's database.

    Dropped, not disabled: a disabled BEFORE INSERT row trigger still makes COPY insert row by
    row instead of in batches (copyfrom.c), so disabling would not measure "no check at all".
    A partition's clone of the parent's row trigger goes with the parent's.
    """
    with engine.begin() as conn:
        triggers = conn.execute(
            text(
                "SELECT tgrelid::regclass::text, tgname FROM pg_trigger"
                " WHERE tgname IN ('trg_attempts_require_active_item', 'trg_attempts_require_active_items')"
                " AND tgparentid = 0"
            )
        ).all()
        for table, trigger in triggers:
            conn.exec_driver_sql(
                sql.SQL("DROP TRIGGER {} ON {}")
                .format(sql.Identifier(trigger), sql.SQL(table))
                .as_string(conn.connection.dbapi_connection)
            )
