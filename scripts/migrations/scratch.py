"""A scratch database with the target's schema and no data, dropped at the end, always.

The schema is the target's own (``pg_dump --schema-only``), so whatever was changed by hand
is there too; the rows of ``alembic_version`` and ``migration_history`` come along so that the
runtime sees the same revision and checksums as on the target. The copy is made on the
target's server when the role may create databases (same version, same extensions), else on
a throwaway cluster of the bundled PostgreSQL started for the purpose and removed after.
"""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, Engine

from scripts.db import libpq
from scripts.db.engine import connect, make_engine
from scripts.db.target import session
from scripts.db.urls import scrub
from scripts.errors import PlanFailed
from scripts.migrations.history import HISTORY_TABLE

SCRATCH_PREFIX = "alp_db_plan_"
# pg_dump 17+ writes this setting; older servers do not know it (and it is only a default).
NEWER_SETTINGS = {"transaction_timeout": 170000}


@dataclass(frozen=True)
class Scratch:
    url: URL
    where: str  # said to the DBA: which server holds the copy, and why


def _can_create_databases(conn: Connection) -> bool:
    return bool(
        conn.scalar(text("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"))
    )


def _bookkeeping_tables(conn: Connection) -> list[str]:
    names = ["alembic_version", HISTORY_TABLE.name]
    return [name for name in names if conn.scalar(text("SELECT to_regclass(:n)"), {"n": name}) is not None]


def _run(argv: list[str], url: URL, *, stdin: str | None = None) -> str:
    with libpq.passfile(url.password and str(url.password)) as pgpass:
        env = libpq.client_env(url, pgpass, application_name="alp-db plan")
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        detail = next(
            (line for line in lines if "ERROR" in line or "error:" in line), lines[0] if lines else ""
        )
        raise PlanFailed(
            f"{Path(argv[0]).name} failed while copying the schema: {scrub(detail.strip(), url)}",
            "the target was not changed; check that the role may read the whole schema",
        )
    return result.stdout


def _dump(pg_dump: Path, url: URL, tables: list[str]) -> str:
    """The schema, then the runtime's bookkeeping rows, as one SQL script."""
    base = [str(pg_dump), "--no-password", "--no-owner", "--no-privileges"]
    script = _run([*base, "--schema-only"], url)
    if tables:
        table_args = [f"--table={name}" for name in tables]
        script += _run([*base, "--data-only", *table_args], url)
    return script


def _without_newer_settings(script: str, server_version: int) -> str:
    """Drop the ``SET x = ...`` lines of settings the scratch server is too old to know."""
    unknown = {name for name, since in NEWER_SETTINGS.items() if server_version < since}
    if not unknown:
        return script
    kept = [
        line
        for line in script.splitlines(keepends=True)
        if not any(line.startswith(f"SET {name} =") for name in unknown)
    ]
    return "".join(kept)


@contextmanager
def scratch_copy(target: URL) -> Iterator[Scratch]:
    """A throwaway database holding the target's schema; nothing on the target changes."""
    found = libpq.newest_client("pg_dump")
    if found is None:
        raise PlanFailed("pg_dump not found", 'run pip install -e ".[dev]" (the embedded PostgreSQL has it)')
    pg_dump, _ = found
    psql = pg_dump.with_name("psql")
    name = SCRATCH_PREFIX + uuid.uuid4().hex[:12]
    with session(target) as conn:
        on_target = _can_create_databases(conn)
        tables = _bookkeeping_tables(conn)
    with ExitStack() as stack:
        if on_target:
            server = target
            where = f"scratch database {name} on the target's server"
        else:
            server = stack.enter_context(_throwaway_cluster())
            where = f"scratch database {name} on a throwaway cluster (the role may not create databases)"
        admin = make_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
        stack.callback(admin.dispose)
        with connect(admin) as conn:
            prep = conn.dialect.identifier_preparer
            conn.exec_driver_sql(f"CREATE DATABASE {prep.quote(name)} TEMPLATE template0")
            server_version = int(conn.scalar(text("SHOW server_version_num")) or 0)
        stack.callback(_drop, admin, name)
        scratch = server.set(database=name)
        script = _without_newer_settings(_dump(pg_dump, target, tables), server_version)
        _run(
            [str(psql), "-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "--single-transaction"],
            scratch,
            stdin=script,
        )
        yield Scratch(url=scratch, where=where)


def _drop(admin: Engine, name: str) -> None:
    with connect(admin) as conn:
        prep = conn.dialect.identifier_preparer
        # WITH (FORCE) (PostgreSQL 13+) ends the sessions a failed revision may have left
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {prep.quote(name)} WITH (FORCE)")


@contextmanager
def _throwaway_cluster() -> Iterator[URL]:
    from scripts.db.devdb import Cluster

    with tempfile.TemporaryDirectory(prefix="alp-db-plan-", ignore_cleanup_errors=True) as home:
        cluster = Cluster(home=Path(home))
        try:
            cluster.ensure_running()
            yield cluster.url("postgres")
        finally:
            cluster.destroy()
