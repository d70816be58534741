"""A batch-update whose connection is lost mid-run (server restart, failover, a DBA's
pg_terminate_backend) stops with one line and exit 2, and the same command resumes it.

The test cluster is shared, so instead of restarting it the test ends the batch's backend
with pg_terminate_backend while the batch waits on a row lock the test holds: the client sees
what a restart gives it (FATAL 57P01 admin_shutdown, then a closed connection).
"""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import text

from tests.polling import wait_until
from tests.project import REPO_ROOT
from tests.test_backfill import (
    GUIDE_SET,
    GUIDE_WHERE,
    WAIT_S,
    backend_alive,
    checkpoint,
    difficulties,
    guide_change,
    matching_item_at,
    seed_items,
    waiting_update_pid,
)


def test_lost_connection_is_one_line_exit_2_and_the_rerun_changes_every_row_exactly_once(
    db_url, engine, row_locker
):
    before = seed_items(engine)
    locked_id, position = matching_item_at(engine, 300)
    blocker = row_locker(locked_id)
    env = {**os.environ, "DATABASE_URL": db_url.render_as_string(hide_password=False)}
    command = [sys.executable, "-m", "scripts", "batch-update", "items", "--set", GUIDE_SET]
    command += ["--where", GUIDE_WHERE, "--name", "lost", "--batch-size", "50"]
    proc = subprocess.Popen(
        [*command, "--lock-timeout", "10min"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def blocked() -> int | None:
            assert proc.poll() is None, f"the run ended early: {proc.communicate()}"
            return waiting_update_pid(engine)

        pid = wait_until(blocked, "the run to block on the locked row")
        at_loss = checkpoint(engine, "lost")
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid}) is True
        _, stderr = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    blocker.rollback()
    assert proc.returncode == 2, stderr
    assert "Traceback" not in stderr
    [line] = [ln for ln in stderr.splitlines() if ln.startswith("alp-db: error:")]
    assert "data migration 'lost': the connection to the database was lost at the batch after key" in line
    # psycopg2's first line for a backend ended by the server (restart or pg_terminate_backend)
    assert "(server closed the connection unexpectedly)" in line or "terminating connection" in line
    assert line.endswith("every batch before it is committed; run the same command again to resume")
    wait_until(lambda: not backend_alive(engine, int(pid)), "the terminated backend to end")
    # the batch in flight rolled back together with its checkpoint
    assert at_loss is not None and at_loss["rows_walked"] == position // 50 * 50
    assert checkpoint(engine, "lost") == at_loss
    rerun = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert difficulties(engine) == guide_change(before)
    done = checkpoint(engine, "lost")
    assert done is not None and done["finished_at"] is not None and done["rows_walked"] == len(before)
