"""Batched data migrations: every matching row updated exactly once, resumable, gentle."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine

from scripts import backfill
from scripts.backfill import offline as backfill_offline
from scripts.cli import main
from scripts.db.engine import make_engine
from scripts.errors import DataMigrationError, LockTimeout
from scripts.migrations import api as migrations
from tests.conftest import PgServer, unique_name
from tests.polling import wait_until
from tests.project import HEAD, NEXT, REPO_ROOT

GUIDE_SET = "difficulty = difficulty * 1.1"
GUIDE_WHERE = "difficulty < 2.0"
WAIT_S = 60.0  # upper bound of every wait on the database; the waits end as soon as it answers

# The guide's loop ("Data Migration"), as written.
GUIDE_LOOP = """
DO $$
DECLARE
    batch_size INTEGER := 1000;
    total_updated INTEGER := 0;
    batch_updated INTEGER;
BEGIN
    LOOP
        UPDATE items
        SET difficulty = difficulty * 1.1
        WHERE id IN (
            SELECT id FROM items
            WHERE difficulty < 2.0
            LIMIT batch_size
        );
        GET DIAGNOSTICS batch_updated = ROW_COUNT;
        total_updated := total_updated + batch_updated;
        EXIT WHEN batch_updated = 0;
    END LOOP;
END $$;
"""


# -- helpers ----------------------------------------------------------------------------------


def seed_items(engine: Engine, count: int = 601) -> dict[str, float]:
    """Items with difficulty spread evenly over [-3, 3]; returns id -> difficulty."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO items (item_type, stem, difficulty)"
                " SELECT 'multiple_choice', 'stem ' || i, -3 + 6.0 * i / (:n - 1)"
                " FROM generate_series(0, :n - 1) AS i"
            ),
            {"n": count},
        )
    return difficulties(engine)


def difficulties(engine: Engine) -> dict[str, float]:
    with engine.connect() as conn:
        return {str(r.id): r.difficulty for r in conn.execute(text("SELECT id, difficulty FROM items"))}


def guide_change(before: dict[str, float]) -> dict[str, float]:
    """What the guide meant: each row below 2.0 multiplied by 1.1, once."""
    return {k: v * 1.1 if v < 2.0 else v for k, v in before.items()}


def checkpoint_table_exists(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT to_regclass('data_migration_checkpoints') IS NOT NULL")) is True


def checkpoint(engine: Engine, name: str) -> dict[str, object] | None:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT * FROM data_migration_checkpoints WHERE name = :n"), {"n": name}
        ).first()
        return dict(row._mapping) if row else None


def waiting_update_pid(engine: Engine) -> int | None:
    """The backend of this database waiting for a lock (the test's blockers only hold them)."""
    with engine.connect() as conn:
        return conn.scalar(
            text(
                "SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted"
                " WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()"
                " AND a.query LIKE '%UPDATE%' LIMIT 1"
            )
        )


def backend_alive(engine: Engine, pid: int) -> bool:
    with engine.connect() as conn:
        return bool(conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}))


def matching_item_at(engine: Engine, n: int) -> tuple[str, int]:
    """The first item below 2.0 at or after position ``n`` in key order, and its position.

    Only a row that matches WHERE is locked by the UPDATE (and so waited for): PostgreSQL
    skips a locked row whose current version does not match ("UPDATE", READ COMMITTED).
    """
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT id, pos FROM (SELECT id, difficulty, row_number() OVER (ORDER BY id) - 1 AS pos"
                " FROM items) AS s WHERE difficulty < 2.0 AND pos >= :n ORDER BY pos LIMIT 1"
            ),
            {"n": n},
        ).one()
        return str(row.id), int(row.pos)


def run_guide_change(url: URL, **kwargs: object) -> backfill.BackfillResult:
    options: dict[str, object] = {"batch_size": 50, **kwargs}
    return backfill.batch_update(url, table="items", set_=GUIDE_SET, where=GUIDE_WHERE, **options)  # type: ignore[arg-type]


# -- correctness ------------------------------------------------------------------------------


def test_guide_change_multiplies_each_row_below_two_exactly_once_and_finishes(db_url, engine):
    before = seed_items(engine)
    result = run_guide_change(db_url, name="scale_difficulty")
    assert result.outcome == "finished"
    assert difficulties(engine) == guide_change(before)
    assert result.rows_updated == sum(1 for v in before.values() if v < 2.0)
    assert result.rows_walked == len(before)
    cp = checkpoint(engine, "scale_difficulty")
    assert cp is not None and cp["finished_at"] is not None and cp["rows_done"] == result.rows_updated


def test_checkpoint_table_is_not_schema_drift(db_url, engine):
    from alembic import command

    from scripts.schema_diff import validate_schema

    seed_items(engine, count=20)
    run_guide_change(db_url, name="drift_probe")
    command.check(migrations.alembic_config(db_url))  # raises on any difference
    assert not validate_schema(db_url).drift


def test_guide_loop_revisits_rows_until_the_check_constraint_stops_it(db_url, engine, pg_server):
    seed_items(engine)
    result = pg_server.psql(db_url, "-v", "ON_ERROR_STOP=1", input_text=GUIDE_LOOP)
    assert result.returncode != 0
    assert "ck_items_difficulty_range" in result.stderr


def test_finished_migration_run_again_changes_nothing(db_url, engine):
    seed_items(engine)
    run_guide_change(db_url, name="once")
    after_first = difficulties(engine)
    again = run_guide_change(db_url, name="once")
    assert again.outcome == "already finished" and again.rows_updated == 0
    assert difficulties(engine) == after_first


def test_max_runtime_stops_at_a_checkpoint_and_the_same_name_resumes(db_url, engine):
    before = seed_items(engine)
    first = run_guide_change(db_url, name="slow", batch_size=100, max_runtime=0)
    assert first.outcome == "stopped at max runtime" and first.batches == 1 and not first.finished
    cp = checkpoint(engine, "slow")
    assert cp is not None and cp["finished_at"] is None and cp["batches"] == 1
    second = run_guide_change(db_url, name="slow", batch_size=100)
    assert second.resumed and second.outcome == "finished"
    assert first.rows_updated + second.rows_updated == sum(1 for v in before.values() if v < 2.0)
    assert difficulties(engine) == guide_change(before)


def test_killed_run_restarted_with_the_same_name_changes_every_row_exactly_once(
    db_url, engine, row_locker, tmp_path
):
    before = seed_items(engine)
    # Pin the run mid-way: a row further along is locked, so the subprocess blocks there.
    locked_id, position = matching_item_at(engine, 400)
    blocker = row_locker(locked_id)
    env = {**os.environ, "DATABASE_URL": db_url.render_as_string(hide_password=False)}
    args = ["--set", GUIDE_SET, "--where", GUIDE_WHERE, "--name", "killed", "--batch-size", "50"]
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scripts", "batch-update", "items", *args, "--lock-timeout", "10min"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def blocked() -> int | None:
        assert proc.poll() is None, f"the run ended early: {log.read_text()}"
        return waiting_update_pid(engine)

    try:
        pid = wait_until(blocked, "the run to block on the locked row")
        at_kill = checkpoint(engine, "killed")
        assert (
            at_kill is not None
            and at_kill["finished_at"] is None
            and at_kill["rows_walked"] == position // 50 * 50
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    blocker.rollback()
    wait_until(lambda: not backend_alive(engine, int(pid)), "the killed run's backend to end")  # type: ignore[call-overload]
    # the batch in flight was not committed, and neither was its checkpoint
    assert checkpoint(engine, "killed") == at_kill
    resumed = run_guide_change(db_url, name="killed")
    assert resumed.resumed and resumed.outcome == "finished"
    assert difficulties(engine) == guide_change(before)


class RecordingReporter:
    def __init__(self) -> None:
        self.retried = threading.Event()
        self.retries: list[str] = []

    def start(self, **_: object) -> None:
        pass

    def batch(self, **_: object) -> None:
        pass

    def retry(self, message: str) -> None:
        self.retries.append(message)
        self.retried.set()

    def pause(self, message: str) -> None:
        pass

    def finish(self, summary: str) -> None:
        pass


def test_health_is_read_before_the_first_batch_then_at_most_once_an_interval(engine):
    from scripts.backfill.health import HealthLimits
    from scripts.backfill.throttle import Throttle

    with engine.connect() as conn:
        oid = int(conn.scalar(text("SELECT 'items'::regclass::oid")))
        every = Throttle(conn, "n", "items", oid, HealthLimits(check_interval_s=0), RecordingReporter())
        rarely = Throttle(conn, "n", "items", oid, HealthLimits(check_interval_s=3600), RecordingReporter())
        for _ in range(3):
            assert every.wait(None) and rarely.wait(None)
    assert (every.reads, rarely.reads) == (3, 1)


def test_row_locked_by_another_transaction_makes_the_batch_retry_not_fail(db_url, engine, row_locker):
    before = seed_items(engine)
    blocker = row_locker(matching_item_at(engine, 10)[0])
    reporter = RecordingReporter()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = run_guide_change(
                db_url, name="locked", lock_timeout="100ms", max_retries=1000, reporter=reporter
            )
        except Exception as exc:  # handed to the test thread, which re-raises it
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    try:
        wait_until(lambda: waiting_update_pid(engine), "the batch to wait for the locked row")
        assert reporter.retried.wait(WAIT_S), "the batch was not retried"
        with pytest.raises(DataMigrationError, match="'locked' is already running"):
            run_guide_change(db_url, name="locked")
    finally:
        blocker.rollback()
        worker.join(WAIT_S)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert isinstance(result, backfill.BackfillResult)
    assert result.outcome == "finished" and result.retries >= 1
    assert "lock timeout" in reporter.retries[0]
    assert difficulties(engine) == guide_change(before)


def test_lock_held_past_every_retry_stops_at_the_last_checkpoint_with_a_clear_error(
    db_url, engine, row_locker
):
    before = seed_items(engine)
    locked_id, position = matching_item_at(engine, 200)
    row_locker(locked_id)
    with pytest.raises(
        LockTimeout, match=r"'stuck'.* hit a lock timeout 2 times \(lock_timeout 50ms\)"
    ) as caught:
        run_guide_change(db_url, name="stuck", lock_timeout="50ms", max_retries=1)
    assert "run again with the same name to resume" in str(caught.value)
    cp = checkpoint(engine, "stuck")
    assert cp is not None and cp["finished_at"] is None and cp["rows_walked"] == position // 50 * 50
    # the batches before the locked row are committed, the rest untouched
    walked = sorted(before)[: position // 50 * 50]
    expected = {k: guide_change(before)[k] if k in walked else v for k, v in before.items()}
    assert difficulties(engine) == expected


def test_dry_run_counts_what_would_change_and_changes_nothing(db_url, engine):
    before = seed_items(engine)
    result = run_guide_change(db_url, dry_run=True)
    assert result.dry_run and result.outcome == "dry run"
    assert result.rows_updated == sum(1 for v in before.values() if v < 2.0)
    assert result.rows_walked == len(before)
    assert difficulties(engine) == before
    assert not checkpoint_table_exists(engine)


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"table": "no_such_table"}, "table 'no_such_table' does not exist"),
        ({"table": "table_sizes"}, "'table_sizes' is not a table"),
        ({"key": "no_such_column"}, "table 'items' has no column 'no_such_column'"),
        ({"key": "difficulty"}, r"\(difficulty\) is not a usable key of 'items'"),
        ({"set_": "difficulty = difficulty * * 1.1"}, r"SET .* is not valid SQL here \(syntax error"),
        ({"set_": "no_such_column = 1"}, r"SET .* is not valid .*no_such_column"),
        ({"where": "difficulty"}, "argument of WHERE must be type boolean"),
        ({"set_": "difficulty = 1; DROP TABLE items"}, "more than one statement"),
        ({"set_": "stem = 'x', id = gen_random_uuid()"}, "SET assigns the key column id"),
    ],
)
def test_bad_table_key_or_expression_gives_a_clear_error_and_changes_nothing(
    db_url, engine, options, message
):
    before = seed_items(engine)
    args = {"table": "items", "set_": GUIDE_SET, "where": GUIDE_WHERE, **options}
    with pytest.raises(DataMigrationError, match=message):
        backfill.batch_update(db_url, **args)  # type: ignore[arg-type]
    assert difficulties(engine) == before
    assert not checkpoint_table_exists(engine)


def test_table_without_a_usable_key_gives_a_clear_error(db_url, engine):
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (body text, ref int UNIQUE)"))  # unique but nullable
        conn.execute(text("INSERT INTO notes VALUES ('a', 1)"))
    with pytest.raises(DataMigrationError, match="'notes' has no key to walk by") as caught:
        backfill.batch_update(db_url, table="notes", set_="body = upper(body)")
    assert "add a primary key" in str(caught.value)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT body FROM notes")) == "a"


def test_same_name_for_another_change_is_refused(db_url, engine):
    seed_items(engine)
    run_guide_change(db_url, name="taken", max_runtime=0)
    with pytest.raises(DataMigrationError, match="'taken' already exists"):
        backfill.batch_update(db_url, table="items", set_="difficulty = 0", name="taken")


# -- key shapes -------------------------------------------------------------------------------


def test_integer_keys_walk_in_numeric_order_and_update_each_row_once(db_url, engine):
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counters (id bigint PRIMARY KEY, n int NOT NULL)"))
        conn.execute(text("INSERT INTO counters SELECT i, i FROM generate_series(1, 1000) AS i"))
    # n + 3 still matches n % 3 = 0: the guide's loop would pick these rows forever
    result = backfill.batch_update(
        db_url, table="counters", set_="n = n + 3", where="n % 3 = 0", batch_size=7
    )
    assert result.outcome == "finished" and result.rows_updated == 333
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT id, n FROM counters")).all())
    assert rows == {i: i + 3 if i % 3 == 0 else i for i in range(1, 1001)}


def test_composite_keys_walk_by_row_comparison(db_url, engine):
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE scores (learner int, item int, score float8 NOT NULL,"
                " PRIMARY KEY (learner, item))"
            )
        )
        conn.execute(
            text(
                "INSERT INTO scores SELECT l, i, l * i FROM generate_series(1, 20) AS l,"
                " generate_series(1, 30) AS i"
            )
        )
    result = backfill.batch_update(
        db_url, table="scores", set_="score = score * 2", where="score < 100", batch_size=17
    )
    assert result.key == ("learner", "item") and result.outcome == "finished"
    with engine.connect() as conn:
        rows = {(r.learner, r.item): r.score for r in conn.execute(text("SELECT * FROM scores"))}
    assert rows == {
        (lr, it): lr * it * 2.0 if lr * it < 100 else float(lr * it)
        for lr in range(1, 21)
        for it in range(1, 31)
    }
    with pytest.raises(DataMigrationError, match="use one of: learner, item"):
        backfill.batch_update(db_url, table="scores", set_="score = 0", key="item,learner")


# -- offline and in a revision ----------------------------------------------------------------


def offline_script(plan: backfill.Plan) -> str:
    return "\n".join(backfill_offline.statements(plan)) + "\n"


def test_offline_loop_runs_in_psql_and_gives_the_same_result(db_url, engine, pg_server, tmp_path):
    before = seed_items(engine)
    plan = backfill_offline.plan(
        table="items", set_=GUIDE_SET, where=GUIDE_WHERE, name="offline", batch_size=50
    )
    script = tmp_path / "backfill.sql"
    script.write_text(offline_script(plan))
    result = pg_server.psql(db_url, "-v", "ON_ERROR_STOP=1", "-f", str(script))
    assert result.returncode == 0, result.stderr
    assert difficulties(engine) == guide_change(before)
    cp = checkpoint(engine, "offline")
    assert cp is not None and cp["finished_at"] is not None and cp["batches"] == 13
    again = pg_server.psql(db_url, "-v", "ON_ERROR_STOP=1", "-f", str(script))
    assert again.returncode == 0 and "already finished" in again.stderr
    assert difficulties(engine) == guide_change(before)


def test_offline_loop_resumes_a_run_started_online(db_url, engine, pg_server, tmp_path):
    before = seed_items(engine)
    run_guide_change(db_url, name="mixed", max_runtime=0)
    plan = backfill_offline.plan(
        table="items", set_=GUIDE_SET, where=GUIDE_WHERE, name="mixed", batch_size=50
    )
    script = tmp_path / "backfill.sql"
    script.write_text(offline_script(plan))
    result = pg_server.psql(db_url, "-v", "ON_ERROR_STOP=1", "-f", str(script))
    assert result.returncode == 0, result.stderr
    assert difficulties(engine) == guide_change(before)


REVISION_NEXT = f'''"""Scale item difficulty below 2.0 by 1.1 (batched data migration).

Revision ID: {NEXT}
Revises: {HEAD}
"""

from alembic import op
from scripts import backfill

revision = "{NEXT}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None
NAME = "{NEXT}_scale_difficulty"


def upgrade() -> None:
    op.execute("COMMENT ON TABLE items IS 'difficulty scaled in {NEXT}'")
    backfill.batch_update_in_revision(
        op, table="items", set_="difficulty = difficulty * 1.1", where="difficulty < 2.0",
        name=NAME, batch_size=50,
    )


def downgrade() -> None:
    backfill.forget_in_revision(op, NAME)
    op.execute("COMMENT ON TABLE items IS NULL")
'''
CHECKPOINT_NAME = f"{NEXT}_scale_difficulty"


@pytest.fixture
def project_with_revision_next(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "project"
    home.mkdir()
    shutil.copy(REPO_ROOT / "alembic.ini", home / "alembic.ini")
    shutil.copytree(REPO_ROOT / "alembic", home / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    (home / "alembic" / "versions" / f"{CHECKPOINT_NAME}.py").write_text(REVISION_NEXT)
    monkeypatch.setenv("ALP_DB_HOME", str(home))
    return home


def test_revision_runs_the_helper_outside_its_transaction(db_url, engine, project_with_revision_next):
    before = seed_items(engine)
    migrations.upgrade(db_url, NEXT)
    assert difficulties(engine) == guide_change(before)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == NEXT
        assert (
            conn.scalar(text("SELECT success FROM migration_history WHERE revision = :r"), {"r": NEXT})
            is True
        )
    cp = checkpoint(engine, CHECKPOINT_NAME)
    assert cp is not None and cp["finished_at"] is not None
    migrations.downgrade(db_url, HEAD)
    assert checkpoint(engine, CHECKPOINT_NAME) is None


def test_revision_offline_sql_runs_in_psql(
    pg_server: PgServer, template_db, project_with_revision_next, tmp_path
):
    name = unique_name("alp_offline")
    url = pg_server.create_database(name, template=template_db)
    eng = make_engine(url)
    try:
        before = seed_items(eng)
        script = tmp_path / "upgrade.sql"
        with script.open("w") as out:
            migrations.upgrade(None, f"{HEAD}:{NEXT}", sql=True, output=out)
        assert "COMMIT;\n\nCREATE TABLE IF NOT EXISTS data_migration_checkpoints" in script.read_text()
        result = pg_server.psql(url, "-v", "ON_ERROR_STOP=1", "-f", str(script))
        assert result.returncode == 0, result.stderr
        assert difficulties(eng) == guide_change(before)
        with eng.connect() as conn:
            assert conn.scalar(text("SELECT version_num FROM alembic_version")) == NEXT
    finally:
        eng.dispose()
        pg_server.drop_database(name)


# -- the command line -------------------------------------------------------------------------


def test_cli_batch_update_and_status(db_url, engine):
    before = seed_items(engine)
    env = {"DATABASE_URL": db_url.render_as_string(hide_password=False)}
    runner = CliRunner()
    args = ["batch-update", "items", "--set", GUIDE_SET, "--where", GUIDE_WHERE, "--name", "cli"]
    result = runner.invoke(main, [*args, "--batch-size", "100", "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outcome"] == "finished"
    assert difficulties(engine) == guide_change(before)
    listed = runner.invoke(main, ["data-migration", "status", "--format", "json"], env=env)
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.stdout)
    assert row["name"] == "cli" and row["state"] == "finished" and row["batches"] == 7


def test_cli_forget_lets_a_finished_migration_run_again(db_url, engine):
    before = seed_items(engine)
    env = {"DATABASE_URL": db_url.render_as_string(hide_password=False)}
    runner = CliRunner()
    args = ["data-migration", "run", "items", "--set", GUIDE_SET, "--where", GUIDE_WHERE, "--name", "twice"]
    assert runner.invoke(main, args, env=env).exit_code == 0
    forgot = runner.invoke(main, ["data-migration", "forget", "twice"], env=env)
    assert forgot.exit_code == 0 and "forgot data migration 'twice'" in forgot.stdout
    assert runner.invoke(main, args, env=env).exit_code == 0
    assert difficulties(engine) == guide_change(guide_change(before))
    unknown = runner.invoke(main, ["data-migration", "forget", "twice-more"], env=env)
    assert unknown.exit_code == 2 and "no data migration named 'twice-more'" in unknown.stderr


def test_cli_unknown_table_is_one_line_and_exit_2(db_url):
    env = {"DATABASE_URL": db_url.render_as_string(hide_password=False)}
    result = CliRunner().invoke(main, ["batch-update", "nope", "--set", "x = 1"], env=env)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "alp-db: error: table 'nope' does not exist — check the name (schema.table for another schema)"
    ]
