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
    flagged = [f for f in report["findings"] if f["check"] == "dead_tuples"]
    assert [f["subject"] for f in flagged] == [bloated_table]
    assert "autovacuum is disabled" in flagged[0]["message"] and flagged[0]["value"] >= 89.9
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
    assert [f for f in report.findings if f.check == "dead_tuples"] == []


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
        flagged = [f for f in report.findings if f.check == "long_query"]
        assert len(flagged) == 1 and "pg_sleep" in flagged[0].message
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
        assert [f.check for f in report.findings if f.level == health.WARNING] == ["idle_in_transaction"]
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
    } == command.DEFAULTS
