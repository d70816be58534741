"""``validate_schema``: read the models, the recorded revision objects and the live catalog,
compare them, and gather the findings in a SchemaReport."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import MetaData, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from scripts.db.engine import first_line, session
from scripts.db.sqlstate import INSUFFICIENT_PRIVILEGE, sqlstate
from scripts.db.target import resolve_url
from scripts.db.urls import redact
from scripts.errors import AlpDbError, PartitionError, PermissionDenied
from scripts.findings import Finding, Severity
from scripts.partitions import Period, missing_partitions
from scripts.schema_diff.catalog import CatalogState, current_namespace, read_catalog
from scripts.schema_diff.compare import compare_enums, compare_owned, compare_tables, partition_coverage
from scripts.schema_diff.findings import SchemaReport
from scripts.schema_diff.model import read_models
from scripts.schema_diff.normalise import expected_state, normalise_views, scratch
from scripts.schema_diff.owned import OwnedObjects

# The scratch objects take ACCESS SHARE locks on the tables views read; never queue behind
# a migration's ACCESS EXCLUSIVE for long ("lock_timeout" in Client Connection Defaults).
VALIDATOR_LOCK_TIMEOUT = "5s"


class CannotCheck(AlpDbError):
    """The schema could not be read, so nothing can be said about drift."""


def validate_schema(
    url: URL | str | None = None,
    metadata: MetaData | None = None,
    *,
    owned: OwnedObjects | None = None,
    now: dt.datetime | None = None,
) -> SchemaReport:
    """Compare ``metadata`` (default: the project's models) and ``owned`` (default: what revisions
    0001-0004 create) with the database at ``url`` (resolved as every command resolves it)."""
    project = metadata is None  # the project's own models: also say where the database stands
    if metadata is None:
        from models import metadata as project_metadata

        metadata = project_metadata
    if owned is None:
        from scripts.schema_diff.owned_objects import MIGRATION_OWNED

        owned = MIGRATION_OWNED
    moment = now or dt.datetime.now(dt.timezone.utc)
    resolved = resolve_url(url)
    models = read_models(metadata)
    with session(resolved) as conn:
        try:
            live = read_catalog(conn, current_namespace(conn))
            with scratch(conn):
                conn.execute(
                    text("SELECT set_config('lock_timeout', :t, true)"), {"t": VALIDATOR_LOCK_TIMEOUT}
                )
                views = normalise_views(conn, owned.views)
                expected = expected_state(conn, models)
            missing = missing_periods(conn, live, moment)
            applied = applied_revisions(conn) if project else ()
        except DBAPIError as exc:
            raise describe_read_error(exc, resolved) from None
    # A detached default partition is reported as such, not as an unknown table too.
    ignored = models.ignored_tables | frozenset(owned.default_partitions.values())
    findings = [
        *compare_tables(expected, live, ignored),
        *compare_enums(expected.enums, live.enums),
        *compare_owned(owned, live, views),
        *partition_coverage(missing, moment),
        *revision_position(applied, project),
    ]
    findings.sort(key=lambda f: (not f.is_error, f.kind, f.object))
    return SchemaReport(database=redact(resolved), findings=findings, tables_checked=len(expected.tables))


def applied_revisions(conn: Connection) -> tuple[str, ...] | None:
    """alembic_version's revisions, or None when the database was never migrated."""
    if conn.scalar(text("SELECT to_regclass('alembic_version')")) is None:
        return None
    return tuple(conn.scalars(text("SELECT version_num FROM alembic_version ORDER BY 1")).all())


def revision_position(applied: tuple[str, ...] | None, project: bool) -> list[Finding]:
    """A warning when the database is not at the head the models describe: the differences
    above are then most likely pending revisions, not drift made by hand."""
    if not project:
        return []
    from scripts.migrations.api import script_directory

    heads = tuple(sorted(script_directory().get_heads()))
    if applied == heads:
        return []
    return [
        Finding(
            "revision",
            "alembic_version",
            Severity.WARNING,
            f"at head {', '.join(heads)}",
            "never migrated (no alembic_version)"
            if applied is None
            else f"at {', '.join(applied) or 'base'}",
            "run `alp-db migrate` first; what remains after that is drift",
        )
    ]


def missing_periods(conn: Connection, live: CatalogState, now: dt.datetime) -> dict[str, list[Period]]:
    """Per RANGE-partitioned table, the current/next periods no partition covers."""
    missing = {}
    for table in live.tables.values():
        if not (table.partition_key or "").upper().startswith("RANGE"):
            continue
        try:
            missing[table.name] = missing_partitions(conn, table.name, at=now.date())
        except PartitionError:
            continue  # not partitioned by time, or no periods to infer: nothing to say
    return missing


def describe_read_error(exc: DBAPIError, url: URL) -> AlpDbError:
    first = first_line(exc, url)
    if sqlstate(exc) == INSUFFICIENT_PRIVILEGE:
        return PermissionDenied(
            f"cannot check the schema: role {url.username!r} may not read it ({first})",
            "run validate-schema as the schema owner or a role with USAGE on the schema and TEMPORARY"
            " on the database",
        )
    return CannotCheck(f"cannot check the schema of {redact(url)}: {first}", "see the server log for details")
