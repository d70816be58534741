"""The standby pair itself: the standby streams, serves reads, and its replay can be paused."""

from __future__ import annotations

from sqlalchemy import text

from benchmarks.standby import StandbyPair
from scripts.db.engine import make_engine


def test_standby_streams_serves_reads_and_pauses_replay_on_request(standby_pair: StandbyPair):
    primary = make_engine(standby_pair.primary_url, isolation_level="AUTOCOMMIT")
    standby = make_engine(standby_pair.standby_url, isolation_level="AUTOCOMMIT")
    try:
        with standby.connect() as conn:
            assert conn.scalar(text("SELECT pg_is_in_recovery()")) is True
        with primary.connect() as conn:
            conn.execute(text("CREATE TABLE seen (n int)"))
            slot = conn.execute(
                text("SELECT slot_type, active FROM pg_replication_slots WHERE slot_name = :s"),
                {"s": standby_pair.slot_name},
            ).one()
            assert (slot.slot_type, slot.active) == ("physical", True)
        standby_pair.wait_for_replay()
        with standby.connect() as conn:
            assert conn.scalar(text("SELECT to_regclass('seen') IS NOT NULL")) is True
        standby_pair.pause_replay()
        with primary.connect() as conn:
            conn.execute(text("INSERT INTO seen VALUES (1)"))
        with standby.connect() as conn:  # received, not applied
            assert conn.scalar(text("SELECT count(*) FROM seen")) == 0
        standby_pair.resume_replay()
        standby_pair.wait_for_replay()
        with standby.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM seen")) == 1
    finally:
        primary.dispose()
        standby.dispose()
