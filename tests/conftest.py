"""A real PostgreSQL for every test.

One throwaway cluster per test process (embedded PostgreSQL 18, or the binaries named by
ALP_DB_PG_BINDIR), or any server given by TEST_DATABASE_URL. The schema is migrated once
into a template database; each test gets a fresh ``CREATE DATABASE ... TEMPLATE`` copy.
Every database and server process started here is removed at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy_utils import create_database

from scripts.db.devdb import ENV_DEV_DIR, Cluster, dev_cluster, embedded_bindir
from scripts.db.engine import make_engine
from scripts.db.urls import parse_url
from scripts.migrations import api as migrations
from tests.project import ProjectCopy

# Durability is worth nothing in a throwaway cluster; speed is.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "120",
    "shared_buffers": "64MB",
}


@dataclass
class PgServer:
    """Where tests create their databases; ``admin`` is a URL with CREATEDB rights."""

    admin: URL
    client_bindir: Path
    tcp_port: int | None  # a 127.0.0.1 port with password authentication, if the server has one

    def url(self, database: str) -> URL:
        return self.admin.set(database=database)

    def admin_engine(self) -> Engine:
        return make_engine(self.admin, isolation_level="AUTOCOMMIT")

    def create_database(self, name: str, template: str | None = None) -> URL:
        url = self.url(name)
        create_database(url, template=template)  # sqlalchemy-utils quotes both names
        return url

    def drop_database(self, name: str) -> None:
        # Not sqlalchemy-utils' drop_database: it issues a bare DROP DATABASE, which fails on a
        # database a test already dropped or one a killed test's session still holds; IF EXISTS
        # and WITH (FORCE) (PostgreSQL 13+, "DROP DATABASE") make the teardown total.
        with self.admin_engine().connect() as conn:
            prep = conn.dialect.identifier_preparer
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {prep.quote(name)} WITH (FORCE)")

    def psql(self, url: URL, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_client(self.client_bindir / "psql", url, ["-X", "-q", *args], input_text)

    def pg_dump_schema(self, url: URL) -> str:
        result = run_client(self.client_bindir / "pg_dump", url, ["--schema-only", "--no-owner"], None)
        assert result.returncode == 0, result.stderr
        return normalise_dump(result.stdout)


def libpq_env(url: URL) -> dict[str, str]:
    """libpq environment for a URL: no password on any command line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    query = dict(url.query)
    env["PGHOST"] = str(query.get("host") or url.host or "")
    env["PGPORT"] = str(query.get("port") or url.port or 5432)
    env["PGUSER"] = url.username or ""
    env["PGDATABASE"] = url.database or ""
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return env


def run_client(
    exe: Path, url: URL, args: list[str], input_text: str | None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(exe), *args], input=input_text, capture_output=True, text=True, env=libpq_env(url), check=False
    )


def normalise_dump(dump: str) -> str:
    """pg_dump output without comments, SET lines and pg_dump 17+'s random \\restrict keys."""
    keep = []
    for line in dump.splitlines():
        if not line.strip() or line.startswith(
            ("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict", "\\unrestrict")
        ):
            continue
        keep.append(line)
    return "\n".join(keep)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        admin = parse_url(external)
        yield PgServer(admin=admin, client_bindir=embedded_bindir(), tcp_port=None)
        return
    home = Path(tempfile.mkdtemp(prefix="alp-db-test-"))
    cluster = Cluster(home=home, settings=FAST_SETTINGS, port=free_port(), tcp=True)
    try:
        cluster.ensure_running()
        yield PgServer(admin=cluster.url("postgres"), client_bindir=embedded_bindir(), tcp_port=cluster.port)
    finally:
        cluster.destroy()
        shutil.rmtree(home, ignore_errors=True)


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def template_db(pg_server: PgServer) -> Iterator[str]:
    """A database migrated to head once; tests copy it."""
    name = unique_name("alp_template")
    url = pg_server.create_database(name)
    migrations.upgrade(url)
    try:
        yield name
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def make_role(pg_server: PgServer) -> Iterator[Callable[..., str]]:
    """Create login roles (cluster-wide, so dropped at the end, after their databases)."""
    created: list[str] = []

    def make(prefix: str, url: URL, password: str | None = None) -> str:
        role = unique_name(prefix)
        engine = make_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(role)
            if password is None:
                conn.exec_driver_sql(f"CREATE ROLE {quoted} LOGIN")
            else:
                conn.exec_driver_sql(f"CREATE ROLE {quoted} LOGIN PASSWORD %(pw)s", {"pw": password})
        engine.dispose()
        created.append(role)
        return role

    try:
        yield make
    finally:
        with pg_server.admin_engine().connect() as conn:
            for role in created:
                quoted = conn.dialect.identifier_preparer.quote(role)
                conn.exec_driver_sql(f"DROP ROLE IF EXISTS {quoted}")


@pytest.fixture
def make_db(pg_server: PgServer, make_role: Callable[..., str]) -> Iterator[Callable[..., URL]]:
    """Create fresh databases (a copy of ``template`` when given); all dropped afterwards.

    Depends on ``make_role`` only for the teardown order: databases (and what roles own in
    them) go first, then the roles.
    """
    created: list[str] = []

    def make(prefix: str = "alp_test", template: str | None = None) -> URL:
        name = unique_name(prefix)
        url = pg_server.create_database(name, template=template)
        created.append(name)
        return url

    try:
        yield make
    finally:
        for name in created:
            pg_server.drop_database(name)


@pytest.fixture
def db_url(make_db: Callable[..., URL], template_db: str) -> URL:
    """A fresh database at head."""
    return make_db("alp_test", template_db)


@pytest.fixture
def empty_db_url(make_db: Callable[..., URL]) -> URL:
    """A fresh, empty database."""
    return make_db("alp_empty")


@pytest.fixture
def engine(db_url: URL) -> Iterator[Engine]:
    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture(scope="session", autouse=True)
def isolated_dev_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A command a test runs without a database URL falls back to the local development
    cluster: give the run one of its own, never the repository's ``.pgdata/``, and stop it at
    the end, so no test leaves a server running."""
    previous = os.environ.get(ENV_DEV_DIR)
    os.environ[ENV_DEV_DIR] = str(tmp_path_factory.mktemp("devdb") / ".pgdata")
    try:
        yield
    finally:
        cluster = dev_cluster()
        if cluster.running():
            cluster.stop()
        if previous is None:
            os.environ.pop(ENV_DEV_DIR, None)
        else:
            os.environ[ENV_DEV_DIR] = previous


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ProjectCopy:
    """A copy of alembic.ini + alembic/ that the library uses instead of the repository's."""
    (tmp_path / "project").mkdir()
    copy = ProjectCopy(tmp_path / "project")
    monkeypatch.setenv("ALP_DB_HOME", str(copy.root))
    return copy


@pytest.fixture
def row_locker(engine: Engine) -> Iterator[Callable[[str], Connection]]:
    """Holds FOR UPDATE row locks in another transaction until the test releases them."""
    held: list[Connection] = []

    def lock(item_id: str) -> Connection:
        conn = engine.connect()
        conn.execute(text("SELECT 1 FROM items WHERE id = :id FOR UPDATE"), {"id": item_id})
        held.append(conn)
        return conn

    yield lock
    for conn in held:
        conn.rollback()
        conn.close()


from tests.standby import standby_pair  # noqa: E402, F401  (the fixture, for every test module)
