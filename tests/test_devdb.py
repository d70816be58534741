"""The local development database: started on demand, used without DATABASE_URL, managed by dev-db."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from scripts.db.devdb import Cluster
from tests.project import HEAD, REPO_ROOT

SYSTEM_PG15 = Path("/usr/lib/postgresql/15/bin")


def run(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture
def dev_env():
    home = Path(tempfile.mkdtemp(prefix="alp-db-devdb-"))
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "ALP_DB_PG_BINDIR"}}
    env["ALP_DB_DEV_DIR"] = str(home / ".pgdata")
    try:
        yield env, home / ".pgdata"
    finally:
        Cluster(home=home / ".pgdata").destroy()
        subprocess.run(["rm", "-rf", str(home)], check=False)


def test_migrate_without_database_url_starts_and_uses_the_local_database(dev_env):
    env, pgdata = dev_env
    first = run(sys.executable, "-m", "scripts", "migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "started the local development database" in first.stderr
    assert f"now at {HEAD}" in first.stdout
    # plain alembic uses the same database, still running
    current = run(sys.executable, "-m", "alembic", "current", env=env)
    assert current.returncode == 0 and f"{HEAD} (head)" in current.stdout
    assert "using the local development database" in current.stderr

    status = run(sys.executable, "-m", "scripts", "dev-db", "status", env=env)
    assert status.returncode == 0 and status.stdout.startswith("running: PostgreSQL 18")
    url = run(sys.executable, "-m", "scripts", "dev-db", "url", env=env)
    assert url.stdout.startswith("postgresql://postgres@/alp_dev?host=/"), url.stdout
    assert_reachable_with_psql_and_the_printed_url(env)

    stopped = run(sys.executable, "-m", "scripts", "dev-db", "stop", env=env)
    assert stopped.stdout.strip() == "stopped"
    status = run(sys.executable, "-m", "scripts", "dev-db", "status", env=env)
    assert status.returncode == 1 and status.stdout.startswith("stopped")

    destroyed = run(sys.executable, "-m", "scripts", "dev-db", "destroy", "--yes", env=env)
    assert destroyed.returncode == 0 and not pgdata.exists()


def alp_db(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "scripts", *args, env=env)


def assert_reachable_with_psql_and_the_printed_url(env: dict[str, str]) -> None:
    """What the README promises a person: psql "$(alp-db dev-db url)", eval "$(alp-db dev-db env)",
    alp-db dev-db psql, and the printed URL as DATABASE_URL for alp-db and plain alembic."""
    psql = shutil.which("psql") or str(Cluster(home=Path(env["ALP_DB_DEV_DIR"])).bindir / "psql")
    alp_db_cmd = shlex.join([sys.executable, "-m", "scripts"])
    shell_env = {**env, "PSQL": psql, "ALP_DB": alp_db_cmd}
    pasted = run("sh", "-c", '"$PSQL" -X -At "$($ALP_DB dev-db url)" -c "select 1"', env=shell_env)
    assert pasted.returncode == 0 and pasted.stdout.strip() == "1", pasted.stderr
    evaluated = run(
        "sh",
        "-c",
        'eval "$($ALP_DB dev-db env)" && "$PSQL" -X -At -c "select current_database()"',
        env=shell_env,
    )
    assert evaluated.returncode == 0 and evaluated.stdout.strip() == "alp_dev", evaluated.stderr
    opened = alp_db(
        "dev-db", "psql", "-X", "-At", "-c", "select current_setting('server_version_num')", env=env
    )
    assert opened.returncode == 0 and opened.stdout.strip().startswith("18"), opened.stderr
    printed = alp_db("dev-db", "url", env=env).stdout.strip()
    as_database_url = {**env, "DATABASE_URL": printed}
    connection = alp_db("test-connection", env=as_database_url)
    assert connection.returncode == 0 and "revision:   0004" in connection.stdout, connection.stderr
    current = run(sys.executable, "-m", "alembic", "current", env=as_database_url)
    assert current.returncode == 0 and "0004 (head)" in current.stdout, current.stderr
    sqlalchemy_form = alp_db("dev-db", "url", "--sqlalchemy", env=env).stdout
    assert sqlalchemy_form.startswith("postgresql+psycopg2://postgres@/alp_dev?host=")


@pytest.mark.skipif(not (SYSTEM_PG15 / "postgres").exists(), reason="no PostgreSQL 15 server binaries here")
def test_dev_db_start_with_bindir_uses_other_server_binaries(dev_env):
    env, _ = dev_env
    started = run(sys.executable, "-m", "scripts", "dev-db", "start", "--bindir", str(SYSTEM_PG15), env=env)
    assert started.returncode == 0, started.stderr
    assert "PostgreSQL 15" in started.stdout
    migrated = run(sys.executable, "-m", "scripts", "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert f"now at {HEAD}" in migrated.stdout
