"""Backfills that respect replicas: pause while a real standby lags, adapt the batch size.

The standby is made slow in a controlled way: its WAL replay is paused
(pg_wal_replay_pause()), so every batch on the primary adds to its lag until replay resumes.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import text
from sqlalchemy.engine import URL, Engine

from benchmarks.standby import StandbyPair
from scripts import backfill
from scripts.backfill.health import HealthLimits, read_signals
from scripts.db.engine import make_engine
from tests.polling import wait_until
from tests.test_backfill import WAIT_S

ROWS = 5000


def make_table(url: URL, rows: int = ROWS) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE counters (id bigint PRIMARY KEY, n int NOT NULL)"))
            conn.execute(
                text("INSERT INTO counters SELECT i, i FROM generate_series(1, :n) AS i"), {"n": rows}
            )
    finally:
        engine.dispose()


def changed_exactly_once(url: URL) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(
                text("SELECT bool_and(n = id + 1) AND count(*) = :n FROM counters"), {"n": ROWS}
            )
    finally:
        engine.dispose()


def test_backfill_pauses_while_the_standby_lags_and_finishes_once_it_catches_up(standby_pair: StandbyPair):
    url = standby_pair.primary_url
    make_table(url)
    standby_pair.wait_for_replay()
    standby_pair.pause_replay()
    limits = HealthLimits(
        max_replay_lag_bytes=64 * 1024,  # a batch of 500 rows writes more WAL than this
        max_replay_lag_s=3600,  # while replay is paused, replay_lag keeps its last value
        pause_on_autovacuum="never",
        poll_s=0.05,
        check_interval_s=0,  # before every batch: the whole table may take less than a second
    )
    options = backfill.BatchOptions(batch_size=500, health=limits)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = backfill.batch_update(
                url, table="counters", set_="n = n + 1", name="lagging", options=options
            )
        except Exception as exc:  # handed to the test thread, which re-raises it
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    try:

        def paused() -> backfill.CheckpointStatus | None:
            assert "error" not in outcome, outcome["error"]
            found = [s for s in backfill.status(url) if s.name == "lagging" and s.state == "paused"]
            return found[0] if found else None

        seen = wait_until(paused, "the backfill to pause for the lagging standby")
        assert isinstance(seen, backfill.CheckpointStatus)
        assert seen.paused_reason is not None and "of WAL behind (limit 0.1 MB)" in seen.paused_reason
        assert seen.as_row()["why"] == seen.paused_reason
        assert seen.rows_walked < ROWS and seen.finished_at is None
    finally:
        standby_pair.resume_replay()
        worker.join(WAIT_S)
    assert not worker.is_alive()
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert isinstance(result, backfill.BackfillResult)
    assert result.outcome == "finished" and result.pauses >= 1 and result.rows_updated == ROWS
    assert changed_exactly_once(url)
    [done] = backfill.status(url)
    assert done.state == "finished" and done.paused_reason is None
    standby_pair.wait_for_replay()
    assert changed_exactly_once(standby_pair.standby_url)
    standby = make_engine(standby_pair.standby_url)
    try:
        with standby.connect() as conn:  # a standby has no WAL position of its own to compare
            oid = conn.scalar(text("SELECT 'counters'::regclass::oid"))
            assert read_signals(conn, int(oid)) is None
    finally:
        standby.dispose()


def per_row_ms(engine: Engine, rows: int = 50) -> float:
    """What one call of slow_next costs on this server now (the known part of a row's cost)."""
    with engine.connect() as conn:
        started = time.perf_counter()
        conn.execute(text("SELECT sum(slow_next(i)) FROM generate_series(1, :n) AS i"), {"n": rows})
        return (time.perf_counter() - started) * 1000 / rows


def test_adaptive_batch_size_converges_near_the_size_that_meets_the_target(db_url, engine):
    # Each row costs a fixed sleep (pg_sleep in the SET), so the right size is the target over
    # that cost, or a little less (the rest of a batch costs something too). The cost is
    # calibrated on the same server before and after, since a busy machine stretches sleeps.
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE paced (id bigint PRIMARY KEY, n int NOT NULL)"))
        conn.execute(text("INSERT INTO paced SELECT i, i FROM generate_series(1, 3000) AS i"))
        conn.execute(
            text(
                "CREATE FUNCTION slow_next(x int) RETURNS int LANGUAGE plpgsql"
                " AS $$ BEGIN PERFORM pg_sleep(0.001); RETURN x + 1; END $$"
            )
        )
    before = per_row_ms(engine)
    options = backfill.BatchOptions(
        target_batch_ms=100, min_batch_size=10, max_batch_size=400, health=HealthLimits(enabled=False)
    )
    result = backfill.batch_update(db_url, table="paced", set_="n = slow_next(n)", options=options)
    right_size = 100 / ((before + per_row_ms(engine)) / 2)
    assert result.outcome == "finished" and result.rows_updated == 3000
    # started at the maximum (400 rows, several times the target): it came down near the size
    assert right_size / 2.5 <= result.last_batch_size <= right_size * 1.5, (
        result.last_batch_size,
        right_size,
    )
    assert result.last_batch_size < 400
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT bool_and(n = id + 1) FROM paced")) is True
