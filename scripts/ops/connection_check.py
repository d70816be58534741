"""``test-connection``: can we reach the server, how fast, where is it, may this role migrate?"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

from sqlalchemy import text
from sqlalchemy.engine import URL

from scripts.db.target import resolve_url, session
from scripts.db.urls import redact

PING_ROUNDS = 5


@dataclass(frozen=True)
class ConnectionReport:
    url: str  # password hidden
    server_version: str
    database: str
    user: str
    connect_ms: float
    latency_ms: float  # median round trip of SELECT 1
    current_revision: str | None
    can_migrate: bool
    missing: list[str]  # what the role lacks to run migrations

    def as_json(self) -> dict[str, object]:
        return asdict(self)


# Tables the role must be able to ALTER (owner or member of the owning role) to migrate them.
OWNERSHIP_SQL = text(
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm')"
    " AND NOT c.relispartition AND NOT pg_has_role(c.relowner, 'USAGE') ORDER BY 1 LIMIT 5"
)


def check_connection(database_url: str | URL | None = None) -> ConnectionReport:
    url = resolve_url(database_url)
    started = time.perf_counter()
    with session(url) as conn:
        connect_ms = (time.perf_counter() - started) * 1000
        rounds = []
        for _ in range(PING_ROUNDS):
            t0 = time.perf_counter()
            conn.execute(text("SELECT 1"))
            rounds.append((time.perf_counter() - t0) * 1000)
        facts = conn.execute(
            text(
                "SELECT current_setting('server_version') AS version, current_database() AS db,"
                " current_user AS usr, has_schema_privilege(current_schema(), 'CREATE') AS can_create,"
                " has_database_privilege(current_database(), 'TEMP') AS can_temp,"
                " to_regclass('alembic_version') IS NOT NULL AS versioned"
            )
        ).one()
        missing = []
        if not facts.can_create:
            missing.append("CREATE on schema public")
        if not facts.can_temp:
            missing.append("TEMPORARY on the database")
        not_owned = conn.scalars(OWNERSHIP_SQL).all()
        if not_owned:
            missing.append("ownership of " + ", ".join(not_owned))
        revision = None
        if facts.versioned:
            if conn.scalar(text("SELECT has_table_privilege('alembic_version', 'SELECT,UPDATE')")):
                revision = conn.scalar(text("SELECT string_agg(version_num, ',') FROM alembic_version"))
            else:
                missing.append("SELECT and UPDATE on alembic_version")
    return ConnectionReport(
        url=redact(url),
        server_version=facts.version,
        database=facts.db,
        user=facts.usr,
        connect_ms=round(connect_ms, 2),
        latency_ms=round(statistics.median(rounds), 3),
        current_revision=revision,
        can_migrate=not missing,
        missing=missing,
    )
