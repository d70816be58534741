"""The migration runtime: one migrator at a time, timeouts, history rows, refusals."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from scripts.db.engine import make_engine
from scripts.errors import ChecksumMismatch, LockTimeout, MigrationFailed
from scripts.migrations import api as migrations
from scripts.migrations.api import alembic_config
from tests.polling import wait_for_sql
from tests.project import HEAD, NEXT, REPO_ROOT, SHIPPED, SHIPPED_NAMES

REVISIONS = SHIPPED


def query(url: URL, sql: str, **params: object) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params).all()]
    finally:
        engine.dispose()


def cli_env(url: URL) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = url.render_as_string(hide_password=False)
    return env


def test_eight_migrators_at_once_apply_each_revision_exactly_once(empty_db_url: URL):
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "scripts", "migrate"],
            cwd=REPO_ROOT,
            env=cli_env(empty_db_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outputs = [proc.communicate(timeout=240) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 8, [err for _, err in outputs]
    assert query(empty_db_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    applied = query(
        empty_db_url,
        "SELECT revision, count(*) FROM migration_history WHERE direction = 'upgrade' AND success"
        " GROUP BY revision ORDER BY revision",
    )
    assert applied == [(rev, 1) for rev in REVISIONS]
    assert sum("nothing to do" in out for out, _ in outputs) == 7


def test_history_records_revision_name_checksum_duration_and_role(db_url: URL):
    rows = query(
        db_url,
        "SELECT revision, migration_name, direction, length(checksum), duration_ms >= 0, success,"
        " applied_by = current_user FROM migration_history ORDER BY applied_at DESC LIMIT 5",
    )
    assert rows == [
        (rev, name, "upgrade", 64, True, True, True)
        for rev, name in reversed([(rev, SHIPPED_NAMES[rev]) for rev in SHIPPED[-5:]])
    ]


def test_guide_manual_rollback_update_on_history_works(db_url: URL):
    engine = make_engine(db_url)
    with engine.begin() as conn:
        updated = conn.execute(
            text(
                "UPDATE migration_history SET success = false, error_message = 'Manually rolled back'"
                " WHERE migration_name = '0004_create_views'"
            )
        ).rowcount
    engine.dispose()
    assert updated == 1


def test_failing_revision_keeps_version_and_records_a_failed_row(project, db_url: URL):
    project.add_revision(
        NEXT,
        "add_table_then_fail",
        HEAD,
        """
        op.execute("CREATE TABLE half_done (id int)")
        op.execute("SELECT 1 / 0")
        """,
    )
    with pytest.raises(MigrationFailed, match="division by zero"):
        migrations.upgrade(db_url)
    assert query(db_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert query(db_url, "SELECT to_regclass('half_done')") == [(None,)]
    failed = query(
        db_url,
        "SELECT revision, direction, success, error_message FROM migration_history WHERE NOT success",
    )
    assert len(failed) == 1
    assert failed[0][:3] == (NEXT, "upgrade", False)
    assert "division by zero" in failed[0][3]


def test_migrator_blocked_by_a_held_lock_gives_up_and_names_the_table(project, db_url: URL):
    project.add_revision(
        NEXT, "add_items_source_column", HEAD, 'op.execute("ALTER TABLE items ADD COLUMN source text")'
    )
    holder = make_engine(db_url).connect()
    holder.execute(text("LOCK TABLE items IN ACCESS SHARE MODE"))  # a long-running reader
    try:
        config = alembic_config(db_url)
        config.attributes["runtime_overrides"] = {"lock_timeout": "200ms", "lock_retry_budget": "0"}
        from alembic import command

        with pytest.raises(LockTimeout, match=r"lock on items") as caught:
            command.upgrade(config, "head")
        assert "waited 200ms" in str(caught.value)
    finally:
        holder.rollback()
        holder.close()
    assert query(db_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    assert query(db_url, "SELECT success FROM migration_history WHERE revision = :r", r=NEXT) == [(False,)]


def test_second_migrator_waits_without_a_transaction_then_finds_nothing_to_do(project, db_url: URL):
    """While one migrator holds the lock, the other waits outside any transaction.

    Separate processes: Alembic's ``context`` proxy is process-global.
    """
    project.add_revision(NEXT, "wait_for_release", HEAD, """op.execute("SELECT pg_advisory_xact_lock(42)")""")
    gate = make_engine(db_url).connect()
    gate.execute(text("SELECT pg_advisory_lock(42)"))  # blocks the extra revision of the first migrator
    gate.commit()
    env = {**cli_env(db_url), "ALP_DB_HOME": str(project.root)}

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "scripts", "migrate"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = start()
    try:
        wait_for(
            db_url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = 42"
        )
        first_pids = [pid for (pid,) in query(db_url, ALP_DB_BACKENDS)]
        second = start()
        # the second polls for the migration lock (its last statement is the try-lock)...
        wait_for(
            db_url,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'alp-db'"
            " AND datname = current_database() AND query LIKE 'SELECT pg_try_advisory_lock%'",
        )
        # ...and while it waits, nobody blocks on the migration lock, and no backend but the first
        # migrator's (inside its revision's transaction, by design) idles in a transaction

        for _ in range(20):
            assert query(
                db_url,
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid <> 42",
            ) == [(0,)]
            assert query(
                db_url,
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'alp-db%'"
                " AND datname = current_database() AND state = 'idle in transaction'"
                " AND pid <> ALL(:first)",
                first=first_pids,
            ) == [(0,)]
    finally:
        gate.execute(text("SELECT pg_advisory_unlock(42)"))
        gate.close()
    out_first, err_first = first.communicate(timeout=60)
    out_second, err_second = second.communicate(timeout=60)
    assert first.returncode == 0, err_first
    assert second.returncode == 0, err_second
    assert f"applied 1 revision(s): {NEXT}" in out_first
    assert f"nothing to do: database already at {NEXT}" in out_second
    assert "waiting for another migration" in err_second


ALP_DB_BACKENDS = (
    "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'alp-db%' AND datname = current_database()"
)


def wait_for(url: URL, sql: str) -> None:
    """Poll until ``sql`` returns a non-zero count."""
    wait_for_sql(url, sql)


def test_migrate_refuses_when_an_applied_revision_was_edited(project, db_url: URL):
    sql_file = project.versions / "0004_create_views.upgrade.sql"
    sql_file.write_text(sql_file.read_text() + "\n-- edited after it was applied\n")
    project.add_revision(
        NEXT, "add_items_note_column", HEAD, 'op.execute("ALTER TABLE items ADD COLUMN note text")'
    )
    with pytest.raises(ChecksumMismatch, match="revision 0004 was changed after it was applied"):
        migrations.upgrade(db_url)
    assert query(db_url, "SELECT version_num FROM alembic_version") == [(HEAD,)]


def test_timeouts_apply_to_the_migration_connection(project, db_url: URL):
    project.add_revision(
        NEXT,
        "record_timeouts",
        HEAD,
        """
        op.execute(
            "CREATE TABLE seen_settings AS SELECT current_setting('lock_timeout') AS lt,"
            " current_setting('statement_timeout') AS st"
        )
        """,
        'op.execute("DROP TABLE seen_settings")',
    )
    config = alembic_config(db_url)
    config.cmd_opts = None
    os.environ["ALP_DB_STATEMENT_TIMEOUT"] = "7min"
    try:
        from alembic import command

        # lock retries off: every statement waits the full lock_timeout
        config.attributes["runtime_overrides"] = {"lock_timeout": "1500ms", "lock_retry_budget": "0"}
        command.upgrade(config, "head")
    finally:
        del os.environ["ALP_DB_STATEMENT_TIMEOUT"]
    assert query(db_url, "SELECT lt, st FROM seen_settings") == [("1500ms", "7min")]


def test_a_migrator_waiting_too_long_for_the_migration_lock_gives_up_clearly(db_url: URL):
    from scripts.migrations.lock import MIGRATION_LOCK_KEY

    holder = make_engine(db_url, isolation_level="AUTOCOMMIT").connect()
    holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
    try:
        config = alembic_config(db_url)
        config.attributes["runtime_overrides"] = {"migration_lock_wait": "0.3"}
        from alembic import command

        with pytest.raises(LockTimeout, match="another migration has held the migration lock"):
            command.upgrade(config, "head")
    finally:
        holder.close()


MIGRATION_SESSIONS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND application_name = 'alp-db migration'"
)


def test_a_killed_migrators_revision_is_cancelled_by_the_server_and_recorded_by_the_next_run(
    project, db_url: URL, capsys: pytest.CaptureFixture[str]
):
    project.add_revision(
        "0005",
        "slow_change_of_items",
        "0004",
        """
        op.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        op.execute("SELECT pg_sleep(600)")
        """,
    )
    migrator = subprocess.Popen(
        [sys.executable, "-m", "scripts", "migrate"],
        cwd=REPO_ROOT,
        env={**cli_env(db_url), "ALP_DB_HOME": str(project.root)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(db_url, MIGRATION_SESSIONS + " AND state = 'active' AND query LIKE 'SELECT pg_sleep%'")
    finally:
        migrator.kill()  # SIGKILL: no cleanup of any kind on the client side
        migrator.communicate(timeout=30)
    # client_connection_check_interval: the server notices the client is gone and cancels
    wait_for(db_url, f"SELECT ({MIGRATION_SESSIONS}) = 0", timeout_s=60)
    assert query(db_url, "SELECT count(*) FROM pg_locks WHERE relation = to_regclass('items')") == [(0,)]
    # the revision is fixed, and the next run records the interruption before applying it
    (project.versions / "0005_slow_change_of_items.py").unlink()
    project.add_revision("0005", "slow_change_of_items", "0004", 'op.execute("SELECT 1")')
    assert migrations.migrate(db_url).applied == ["0005"]
    assert "revision 0005 was interrupted by an earlier run" in capsys.readouterr().err
    rows = query(
        db_url, "SELECT success, error_message FROM migration_history WHERE revision = '0005' ORDER BY id"
    )
    assert [ok for ok, _ in rows] == [False, True]
    assert rows[0][1].startswith("interrupted: the migrator's connection was lost")


def test_a_migrator_waits_for_an_earlier_migration_backend_still_running(db_url: URL):
    """Under the migration lock, a leftover migration session is waited for, then named."""
    from scripts.migrations.sessions import MIGRATION_APPLICATION_NAME

    leftover = make_engine(db_url).connect()
    leftover.execute(
        text("SELECT set_config('application_name', :n, false)"), {"n": MIGRATION_APPLICATION_NAME}
    )
    leftover.commit()
    try:
        with pytest.raises(LockTimeout, match=r"an earlier migration's backend \(pid \d+") as caught:
            migrations.migrate(db_url, overrides={"migration_lock_wait": "0.5"})
        assert "pg_terminate_backend" in str(caught.value)
    finally:
        leftover.close()
