"""Lock retries: a blocked revision waits briefly, rolls back, lets the queue drain, tries again."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from scripts.db.engine import make_engine
from scripts.errors import LockTimeout
from scripts.migrations import api as migrations
from tests.project import REPO_ROOT, ProjectCopy
from tests.test_runtime import cli_env, query, wait_for

# a not-granted lock on items requested by an alp-db backend: the migrator queued on it
MIGRATOR_WAITING = (
    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE NOT l.granted AND l.relation = to_regclass('items') AND a.application_name = 'alp-db migration'"
)


def add_column_revision(project: ProjectCopy) -> None:
    project.add_revision(
        "0005", "add_items_source_column", "0004", 'op.execute("ALTER TABLE items ADD COLUMN source text")'
    )


def test_blocked_revision_retries_without_queueing_others_then_succeeds_when_the_blocker_ends(
    project: ProjectCopy, db_url: URL
):
    add_column_revision(project)
    blocker = make_engine(db_url).connect()
    blocker.execute(text("LOCK TABLE items IN ACCESS SHARE MODE"))  # a long-running reader
    env = {
        **cli_env(db_url),
        "ALP_DB_HOME": str(project.root),
        "ALP_DB_LOCK_RETRY_TIMEOUT": "100ms",  # attempts wait 100ms growing to 500ms
        "ALP_DB_LOCK_RETRY_BUDGET": "120",
    }
    migrator = subprocess.Popen(
        [sys.executable, "-m", "scripts", "migrate"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader = make_engine(db_url).connect()
    try:
        # A third session reading items while the migrator retries. Behind one long lock wait
        # it would queue for the whole wait; here it never waits longer than one attempt (at
        # most 500ms), so a lock_timeout six times that is never reached.
        reader.execute(text("SET lock_timeout = '3s'"))
        reader.commit()
        for _ in range(5):
            wait_for(db_url, MIGRATOR_WAITING)
            try:
                reader.execute(text("SELECT count(*) FROM items")).scalar()
            except OperationalError as exc:  # pragma: no cover - the failure being tested for
                raise AssertionError(f"a reader queued behind the migrator: {exc.orig}") from exc
            reader.rollback()
        assert migrator.poll() is None, migrator.communicate()
    finally:
        reader.close()
        blocker.rollback()
        blocker.close()
    out, err = migrator.communicate(timeout=120)
    assert migrator.returncode == 0, err
    assert "applied 1 revision(s): 0005" in out
    assert "revision 0005 could not take its locks within" in err  # each retry is reported
    assert query(
        db_url,
        "SELECT count(*) FROM information_schema.columns"
        " WHERE table_name = 'items' AND column_name = 'source'",
    ) == [(1,)]


def test_blocked_revision_fails_after_the_retry_budget_with_the_clear_message(
    project: ProjectCopy, db_url: URL
):
    add_column_revision(project)
    blocker = make_engine(db_url).connect()
    blocker.execute(text("LOCK TABLE items IN ACCESS SHARE MODE"))
    try:
        with pytest.raises(LockTimeout) as caught:
            migrations.migrate(db_url, overrides={"lock_retry_budget": "1", "lock_retry_timeout": "50ms"})
    finally:
        blocker.rollback()
        blocker.close()
    message = str(caught.value)
    assert "attempts over the 1s retry budget could not lock items" in message, message
    assert "another session holds it" in message
    assert query(db_url, "SELECT version_num FROM alembic_version") == [("0004",)]
    failed = query(db_url, "SELECT revision, success, error_message FROM migration_history WHERE NOT success")
    assert [(rev, ok) for rev, ok, _ in failed] == [("0005", False)]
    assert "retry budget" in failed[0][2]
