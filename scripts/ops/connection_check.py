"""``test-connection``: can we reach the server, how fast, where is it, may this role migrate?"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field

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
    revision_readable: bool  # False: alembic_version exists but this role may not read it
    can_migrate: bool
    missing: list[str]  # what the role lacks to run migrations
    server_role: str = "primary"  # or "standby": in recovery, read-only (pg_is_in_recovery)
    standbys: list[str] = field(default_factory=list)  # "name (state)" from pg_stat_replication

    def as_json(self) -> dict[str, object]:
        return asdict(self)

    @property
    def revision_text(self) -> str:
        if self.current_revision:
            return self.current_revision
        if not self.revision_readable:
            return "unknown (this role may not read alembic_version)"
        return "none (empty database)"


# The schema migrations write to: the first of search_path the role may use, else public
# (current_schema() is NULL when the role has USAGE on no schema of its search_path).
SCHEMA = "coalesce(current_schema(), 'public')"
# Tables the role must be able to ALTER (owner or member of the owning role) to migrate them.
OWNERSHIP_SQL = text(
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    f" WHERE n.nspname = {SCHEMA} AND c.relkind IN ('r', 'p', 'v', 'm')"
    " AND NOT c.relispartition AND NOT pg_has_role(c.relowner, 'USAGE') ORDER BY 1 LIMIT 5"
)
# Facts read from the catalogs only, which every role may read: nothing here can fail for
# want of a privilege (resolving 'alembic_version' by name would need USAGE on its schema).
FACTS_SQL = text(
    "SELECT current_setting('server_version') AS version, current_database() AS db,"
    f" current_user AS usr, {SCHEMA} AS schema,"
    f" has_schema_privilege({SCHEMA}, 'USAGE') AS can_use,"
    f" has_schema_privilege({SCHEMA}, 'CREATE') AS can_create,"
    " has_database_privilege(current_database(), 'TEMP') AS can_temp,"
    " pg_is_in_recovery() AS in_recovery,"
    " (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    f"   WHERE c.relname = 'alembic_version' AND n.nspname = {SCHEMA}) AS version_table"
)


# The standbys a primary streams to (their state is shown only to pg_read_all_stats members).
STANDBYS_SQL = text(
    "SELECT application_name AS name, coalesce(host(client_addr), 'local socket') AS client,"
    " coalesce(state, 'unknown') AS state FROM pg_stat_replication ORDER BY 1, 2"
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
        facts = conn.execute(FACTS_SQL).one()
        missing = []
        standbys: list[str] = []
        if facts.in_recovery:
            missing.append("a primary (this server is a standby, read-only until promoted)")
        else:
            standbys = [f"{row.name or row.client} ({row.state})" for row in conn.execute(STANDBYS_SQL)]
        if not facts.can_use:
            missing.append(f"USAGE on schema {facts.schema}")
        if not facts.can_create:
            missing.append(f"CREATE on schema {facts.schema}")
        if not facts.can_temp:
            missing.append("TEMPORARY on the database")
        not_owned = conn.scalars(OWNERSHIP_SQL).all()
        if not_owned:
            missing.append("ownership of " + ", ".join(not_owned))
        revision, readable = None, True
        if facts.version_table is not None:
            readable = bool(
                facts.can_use
                and conn.scalar(
                    text("SELECT has_table_privilege(CAST(:t AS oid), 'SELECT,UPDATE')"),
                    {"t": facts.version_table},
                )
            )
            if readable:
                schema = conn.dialect.identifier_preparer.quote(facts.schema)
                revision = conn.scalar(
                    text(f"SELECT string_agg(version_num, ',') FROM {schema}.alembic_version")
                )
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
        revision_readable=readable,
        can_migrate=not missing,
        missing=missing,
        server_role="standby" if facts.in_recovery else "primary",
        standbys=standbys,
    )
