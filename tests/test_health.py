"""health: the monitoring views judged against thresholds, with an exit code for CI and cron."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import OperationalError

from scripts.cli import main
from scripts.db.engine import make_engine
from scripts.ops import health
from tests.polling import wait_for_sql


def flush_statistics(conn) -> None:
    """Push this session's pending statistics now (PG 15+); older servers send them on commit."""
    if conn.dialect.server_version_info >= (15,):
        conn.execute(text("SELECT pg_stat_force_next_flush()"))


def invoke_health(url: URL, *args: str):
    return CliRunner().invoke(
        main, ["health", "--database-url", url.render_as_string(hide_password=False), *args]
    )


@pytest.fixture
def bloated_table(engine: Engine) -> Iterator[str]:
    """A table whose autovacuum is off and nine rows in ten are deleted: bloat on purpose."""
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE bloat_demo (id int PRIMARY KEY, pad text) WITH (autovacuum_enabled = off)")
        )
        conn.execute(
            text("INSERT INTO bloat_demo SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g")
        )
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM bloat_demo WHERE id % 10 <> 0"))
        flush_statistics(conn)
    wait_for_sql(
        engine,
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'bloat_demo'",
        done=lambda dead: (dead or 0) >= 18000,
    )
    yield "public.bloat_demo"


def test_health_json_flags_an_artificially_bloated_table(db_url, bloated_table):
    result = invoke_health(db_url, "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["healthy"] is False
    flagged = [f for f in report["findings"] if f["kind"] == "dead_tuples"]
    assert [f["object"] for f in flagged] == [bloated_table] and flagged[0]["severity"] == "error"
    assert (
        "autovacuum is disabled" in flagged[0]["actual"]
        and "VACUUM public.bloat_demo" in flagged[0]["how_to_fix"]
    )
    assert {row["table_name"] for row in report["dead_tuples"]} >= {"bloat_demo"}


def test_vacuum_clears_the_bloat_finding(db_url, engine, bloated_table):
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM bloat_demo"))
        flush_statistics(conn)
    wait_for_sql(
        engine,
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'bloat_demo'",
        done=lambda d: d == 0,
    )
    report = health.check_health(db_url)
    assert [f for f in report.findings if f.kind == "dead_tuples"] == []


def test_a_fresh_database_is_healthy_and_reports_every_section(db_url):
    result = invoke_health(db_url, "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["healthy"] is True and report["database"] == db_url.database
    assert report["database_bytes"] > 0 and report["system"]["xid_age"] >= 0
    assert report["system"]["cache_hit_ratio"] is None or 0 <= report["system"]["cache_hit_ratio"] <= 100
    assert {"users", "attempts", "items"} <= {row["table_name"] for row in report["biggest_tables"]}
    assert any(row["database_name"] == db_url.database for row in report["connections"])


def test_table_format_ends_with_the_verdict(db_url, bloated_table):
    result = invoke_health(db_url)
    assert result.exit_code == 1
    assert "bloat_demo" in result.stdout
    assert result.stdout.rstrip().endswith("1 problem(s) flagged")


def test_raised_threshold_accepts_the_same_bloat(db_url, bloated_table):
    result = invoke_health(db_url, "--format", "json", "--dead-ratio-max", "95")
    assert result.exit_code == 0, result.output


def test_long_running_query_is_flagged(db_url, engine):
    holder = make_engine(db_url)
    pid_box: list[int] = []

    def run_sleep() -> None:
        with holder.connect() as conn:
            pid_box.append(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
            with contextlib.suppress(OperationalError):  # cancelled below, as intended
                conn.execute(text("SELECT pg_sleep(60)"))

    worker = threading.Thread(target=run_sleep)
    worker.start()
    try:
        wait_for_sql(
            engine,
            "SELECT count(*) FROM slow_queries WHERE query LIKE 'SELECT pg_sleep%'",
            done=lambda n: n == 1,
        )
        report = health.check_health(db_url, health.Thresholds(long_query_seconds=1.0))
        flagged = [f for f in report.findings if f.kind == "long_query"]
        assert len(flagged) == 1 and "pg_sleep" in flagged[0].actual
        assert not report.healthy
    finally:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_cancel_backend(:pid)"), {"pid": pid_box[0]})
        worker.join()
        holder.dispose()


def test_session_idle_in_transaction_is_flagged(db_url, engine):
    holder = make_engine(db_url)
    with holder.connect() as idle:
        idle.execute(text("SELECT 1"))  # opens a transaction and leaves it open
        wait_for_sql(
            engine,
            "SELECT count(*) FROM connection_stats"
            " WHERE state = 'idle in transaction' AND database_name = :db",
            {"db": db_url.database},
            done=lambda n: n == 1,
        )
        report = health.check_health(db_url, health.Thresholds(idle_in_transaction_seconds=0.0))
        assert [f.kind for f in report.problems] == ["idle_in_transaction"]
    holder.dispose()


def test_database_without_the_views_cannot_be_checked(empty_db_url):
    result = invoke_health(empty_db_url)
    assert result.exit_code == 2
    assert "monitoring views are missing" in result.stderr and "alp-db migrate" in result.stderr


def test_unreachable_database_cannot_be_checked():
    result = CliRunner().invoke(
        main, ["health", "--database-url", "postgresql://nobody:secret@127.0.0.1:1/none"]
    )
    assert result.exit_code == 2
    assert "cannot reach" in result.stderr and "secret" not in result.stderr


def test_command_defaults_are_the_library_thresholds():
    from scripts.cli import health as command

    defaults = health.Thresholds()
    assert {
        "cache_hit_min": defaults.cache_hit_ratio_min_pct,
        "dead_ratio_max": defaults.dead_tuple_ratio_max_pct,
        "dead_tuples_min": defaults.dead_tuples_min,
        "xid_age_max": defaults.xid_age_max,
        "connections_max": defaults.connection_usage_max_pct,
        "long_query_seconds": defaults.long_query_seconds,
        "idle_in_transaction_seconds": defaults.idle_in_transaction_seconds,
        "replica_lag_seconds": defaults.replica_lag_seconds,
        "replica_lag_bytes": defaults.replica_lag_bytes,
        "slot_retained_bytes": defaults.slot_retained_bytes,
    } == command.DEFAULTS


def test_a_session_that_changed_state_after_our_snapshot_shows_no_negative_duration(db_url, engine):
    """now() is our transaction's start: a session active after it would look -0.000003 s old."""
    other = make_engine(db_url)
    with engine.connect() as reader, other.connect() as busy:
        reader.execute(text("SELECT now()"))  # our transaction, and now(), start here
        busy.execute(text("SELECT 1"))  # the other session changes state after that
        busy.commit()
        raw = reader.execute(
            text("SELECT min(longest_in_state) FROM connection_stats WHERE database_name = :d"),
            {"d": db_url.database},
        ).scalar()
        assert raw.total_seconds() < 0, "the test did not make the view show a negative age"
        clamped = reader.execute(text(health.CONNECTIONS_SQL)).mappings().all()
        assert all(row["longest_in_state"].total_seconds() >= 0 for row in clamped)
    other.dispose()


def test_health_reports_a_lagging_standby_and_an_inactive_slot(standby_pair):
    """A real streaming standby whose replay is paused, and a slot no standby uses."""
    from scripts.migrations import api as migrations
    from scripts.ops.connection_check import check_connection

    migrations.upgrade(standby_pair.primary_url)
    # the standby has the monitoring views too (asked of it: with synchronous_commit off the
    # primary's last commit may not be written out yet when its WAL position is read)
    wait_for_sql(standby_pair.standby_url, "SELECT to_regclass('public.slow_queries') IS NOT NULL")
    standby_pair.pause_replay()
    primary = make_engine(standby_pair.primary_url, isolation_level="AUTOCOMMIT")
    try:
        with primary.connect() as conn:
            conn.execute(text("SELECT pg_create_physical_replication_slot('alp_db_orphan', true)"))
            conn.execute(text("CREATE TABLE wal_maker AS SELECT g FROM generate_series(1, 10000) g"))
        behind = "SELECT min(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)) FROM pg_stat_replication"
        wait_for_sql(primary, behind, done=lambda n: (n or 0) > 0)
        limits = health.Thresholds(replica_lag_bytes=1, replica_lag_seconds=3600)

        report = health.check_health(standby_pair.primary_url, limits)

        assert report.replication is not None and report.replication.role == "primary"
        [standby] = report.replication.standbys
        assert standby["state"] == "streaming" and standby["replay_lag_bytes"] > 0
        lag = [f for f in report.findings if f.kind == "replica_lag"]
        assert len(lag) == 1 and "of WAL not replayed" in lag[0].actual and lag[0].is_error
        slots = {slot["name"]: slot for slot in report.replication.slots}
        assert slots[standby_pair.slot_name]["active"] and not slots["alp_db_orphan"]["active"]
        [orphan] = [f for f in report.findings if f.kind == "inactive_slot"]
        assert orphan.is_error and "pg_drop_replication_slot('alp_db_orphan')" in orphan.how_to_fix
        assert not report.healthy
        # default thresholds: the same standby is a few kB behind, which is no problem
        relaxed = health.check_health(standby_pair.primary_url)
        assert [f.kind for f in relaxed.problems] == ["inactive_slot"]

        on_standby = health.check_health(standby_pair.standby_url)
        assert on_standby.replication is not None and on_standby.replication.role == "standby"
        assert on_standby.replication.this_standby["replay_state"] == "paused"
        messages = [f.actual for f in on_standby.findings]
        assert any("WAL replay is paused" in m for m in messages)
        assert any("max_standby_streaming_delay = " in m for m in messages)
        assert any("hot_standby_feedback is off" in m for m in messages)

        seen = check_connection(standby_pair.primary_url)
        assert seen.server_role == "primary" and len(seen.standbys) == 1 and "(streaming)" in seen.standbys[0]
        from_standby = check_connection(standby_pair.standby_url)
        assert from_standby.server_role == "standby" and not from_standby.can_migrate
        cli = CliRunner().invoke(
            main, ["health", "--database-url", standby_pair.primary_url.render_as_string(False)]
        )
        assert cli.exit_code == 1 and "replication slots" in cli.stdout and "alp_db_orphan" in cli.stdout
    finally:
        standby_pair.resume_replay()
        primary.dispose()
