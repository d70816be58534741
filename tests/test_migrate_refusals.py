"""What migrate, status and rollback refuse, each in one line: standbys, roles that may only
connect, impossible options, unreachable servers; and the standbys' lag after a heavy revision."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import URL

from benchmarks.standby import StandbyPair
from scripts.cli import main
from scripts.errors import ReplicaLagging, StandbyDatabase
from scripts.migrations import api as migrations
from tests.project import REPO_ROOT, SHIPPED
from tests.test_commands import connect_only_url
from tests.test_runtime import query

__all__ = ["connect_only_url"]  # the fixture


def one_error_line(result: Result) -> str:
    assert isinstance(result.exception, SystemExit) and result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("alp-db: error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_migrate_on_a_standby_refuses_at_once_touching_nothing(standby_pair: StandbyPair, capsys):
    with pytest.raises(StandbyDatabase, match=r"is a standby \(in recovery\): it cannot be migrated"):
        migrations.migrate(standby_pair.standby_url)
    assert query(standby_pair.primary_url, "SELECT to_regclass('alembic_version')") == [(None,)]
    plain = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT,
        env={"DATABASE_URL": standby_pair.standby_url.render_as_string(False), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    output = plain.stdout + plain.stderr
    assert plain.returncode != 0 and "FAILED:" in output and "is a standby" in output, output
    assert "Traceback" not in output


def test_migrate_reports_standby_lag_after_an_access_exclusive_revision_and_waits(
    standby_pair: StandbyPair, capsys
):
    migrations.migrate(standby_pair.primary_url, SHIPPED[0], overrides={"wait_for_replicas": "60"})
    err = capsys.readouterr().err
    assert f"after revision {SHIPPED[0]} (ACCESS EXCLUSIVE): standby " in err and "bytes behind" in err
    assert f"standbys replayed revision {SHIPPED[0]}" in err


def test_a_standby_that_does_not_replay_stops_migrate_before_the_next_revision(standby_pair: StandbyPair):
    standby_pair.pause_replay()
    try:
        with pytest.raises(ReplicaLagging, match=r"has not replayed revision (\d+) after 1s") as stopped:
            migrations.migrate(standby_pair.primary_url, overrides={"wait_for_replicas": "1"})
    finally:
        standby_pair.resume_replay()
    # the run stops right after the revision the standby has not replayed, before the next one
    revision = re.search(r"revision (\d+)", str(stopped.value))[1]  # type: ignore[index]
    assert revision != SHIPPED[-1]
    assert query(standby_pair.primary_url, "SELECT version_num FROM alembic_version") == [(revision,)]


@pytest.mark.parametrize("args", [["migrate"], ["migration", "status"], ["migration", "rollback", "--yes"]])
def test_a_connect_only_role_gets_one_line(args: list[str], connect_only_url: URL):
    result = CliRunner().invoke(main, [*args, "--database-url", connect_only_url.render_as_string(False)])
    line = one_error_line(result)
    assert "may use no schema on its search_path" in line and "GRANT USAGE ON SCHEMA public" in line


def test_a_role_that_may_not_read_the_version_table_gets_one_line(db_url: URL, make_role):
    role = make_role("alp_no_select", db_url)
    url = db_url.set(username=role)
    for args in (["migrate"], ["migration", "status"], ["migration", "rollback", "--yes"]):
        line = one_error_line(
            CliRunner().invoke(main, [*args, "--database-url", url.render_as_string(False)])
        )
        assert "permission denied for table" in line, line


def test_rollback_refuses_more_steps_than_are_applied(db_url: URL):
    url = db_url.render_as_string(False)
    line = one_error_line(
        CliRunner().invoke(main, ["migration", "rollback", "--steps", "99", "--yes", "--database-url", url])
    )
    assert f"--steps 99 is more than the {len(SHIPPED)} revision(s) applied" in line
    assert query(db_url, "SELECT version_num FROM alembic_version") == [(SHIPPED[-1],)]


@pytest.mark.parametrize(
    ("option", "value"), [("--lock-wait", "-5"), ("--lock-retry-budget", "-1"), ("--lock-wait", "soon")]
)
def test_negative_or_non_numeric_waits_are_refused(option: str, value: str, db_url: URL):
    result = CliRunner().invoke(
        main, ["migrate", option, value, "--database-url", db_url.render_as_string(False)]
    )
    assert "is not a number of seconds" in one_error_line(result)


def test_migrate_backup_backs_up_only_when_there_is_something_to_do(db_url: URL, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["migrate", "--backup", "--database-url", db_url.render_as_string(False)]
    )
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.stdout and "backup written" not in result.stderr
    assert not list(tmp_path.rglob("*.dump"))


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("postgresql://postgres:wrong@127.0.0.1:1/alp", "cannot reach the database"),
        ("postgresql://nobody:@@:x", "database URL is malformed"),
    ],
)
def test_plain_alembic_prints_failed_and_one_line_for_an_unusable_url(url: str, fragment: str):
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT,
        env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin", "ALP_DB_CONNECT_TIMEOUT": "3"},
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"FAILED: {fragment}" in output and "Traceback" not in output and "wrong" not in output, output


def test_plain_alembic_with_a_wrong_password_prints_failed_and_one_line(pg_server, db_url: URL, make_role):
    if pg_server.tcp_port is None:
        pytest.skip("the test server has no password-authenticated TCP port")
    role = make_role("alp_pw", db_url, password="right-password")
    url = URL.create(
        "postgresql",
        username=role,
        password="wrong-password",
        host="127.0.0.1",
        port=pg_server.tcp_port,
        database=db_url.database,
    )
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT,
        env={"DATABASE_URL": url.render_as_string(False), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "FAILED: login refused" in output, output
    assert "Traceback" not in output and "wrong-password" not in output
