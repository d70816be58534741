"""``validate_schema``: read the models, the recorded revision objects and the live catalog,
compare them, and gather the findings in a SchemaReport."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import MetaData, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from scripts.db.engine import first_line
from scripts.db.schema import target_schema
from scripts.db.sqlstate import INSUFFICIENT_PRIVILEGE, sqlstate
from scripts.db.target import resolve_url, session
from scripts.db.urls import redact
from scripts.errors import AlpDbError, CannotCheck, ConfigError, PermissionDenied
from scripts.findings import Finding, Severity
from scripts.gc_pause import paused_gc
from scripts.schema_diff.catalog import open_schema, read_catalog
from scripts.schema_diff.compare import compare_enums, compare_tables
from scripts.schema_diff.compare_owned import IGNORABLE, compare_owned
from scripts.schema_diff.defaults import equal_defaults
from scripts.schema_diff.findings import SchemaReport
from scripts.schema_diff.model import read_models
from scripts.schema_diff.normalise import expected_state, normalise_views, scratch
from scripts.schema_diff.owned import OwnedObjects

if TYPE_CHECKING:
    from scripts.schema_diff.partition_health import PartitionHealth

__all__ = ["IGNORABLE", "CannotCheck", "validate_schema"]

# The scratch objects take ACCESS SHARE locks on the tables views read; never queue behind
# a migration's ACCESS EXCLUSIVE for long ("lock_timeout" in Client Connection Defaults).
VALIDATOR_LOCK_TIMEOUT = "5s"
# Partition bounds print in the session's TimeZone; the partition manager reads them as UTC.
BOUND_TIMEZONE = "UTC"


def check_ignore(ignore: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(i.strip() for i in ignore if i.strip())
    unknown = sorted(chosen - IGNORABLE)
    if unknown:
        raise ConfigError(
            f"cannot ignore {', '.join(unknown)}", f"--ignore takes a list of: {', '.join(sorted(IGNORABLE))}"
        )
    return chosen


@paused_gc()  # hundreds of thousands of live objects, no garbage: see scripts.gc_pause
def validate_schema(
    url: URL | str | None = None,
    metadata: MetaData | None = None,
    *,
    owned: OwnedObjects | None = None,
    now: dt.datetime | None = None,
    schema: str | None = None,
    ignore: Iterable[str] = (),
) -> SchemaReport:
    """Compare ``metadata`` (default: the project's models) and ``owned`` (default: what the
    revisions create) with ``schema`` (default: ``ALP_DB_SCHEMA``, else public) of the database
    at ``url`` (resolved as every command resolves it). ``ignore`` leaves out aspects a
    deployment manages elsewhere: ``privileges``, ``owner``."""
    project = metadata is None  # the project's own models: also say where the database stands
    if metadata is None:
        from models import metadata as project_metadata

        metadata = project_metadata
    if owned is None:
        from scripts.schema_diff.owned_objects import MIGRATION_OWNED

        owned = MIGRATION_OWNED
    ignored_aspects = check_ignore(ignore)
    target = target_schema(schema)
    moment = now or dt.datetime.now(dt.timezone.utc)
    resolved = resolve_url(url)
    models = read_models(metadata)
    with session(resolved) as conn:
        try:
            namespace = open_schema(conn, target)
            conn.execute(text("SELECT set_config('TimeZone', :tz, false)"), {"tz": BOUND_TIMEZONE})
            live = read_catalog(conn, namespace)
            with scratch(conn):
                conn.execute(
                    text("SELECT set_config('lock_timeout', :t, true)"), {"t": VALIDATOR_LOCK_TIMEOUT}
                )
                views = normalise_views(conn, owned.views)
                expected = expected_state(conn, models)
            same_defaults = equal_defaults(conn, expected, live)
            partitioned = [
                t.name for t in live.tables.values() if (t.partition_key or "").startswith("RANGE")
            ]
            health = partition_health(conn, target, partitioned, moment)
            applied = applied_revisions(conn) if project else ()
        except DBAPIError as exc:
            raise describe_read_error(exc, resolved) from None
    # A detached default partition is reported as such, not as an unknown table too.
    ignored = models.ignored_tables | frozenset(owned.default_partitions.values())
    findings = [
        *compare_tables(expected, live, ignored, lambda *pair: pair in same_defaults),
        *compare_enums(expected.enums, live.enums),
        *compare_owned(owned, live, views, ignored_aspects),
        *(health_findings(health, moment) if health else ()),
        *revision_position(applied, project),
    ]
    findings.sort(key=lambda f: (not f.is_error, f.kind, f.object))
    return SchemaReport(
        database=redact(resolved),
        findings=findings,
        tables_checked=len(expected.tables),
        schema=target,
        ignored=tuple(sorted(ignored_aspects)),
    )


def partition_health(
    conn: Connection, schema: str, partitioned: list[str], now: dt.datetime
) -> list[PartitionHealth]:
    """The partition manager's reading of each RANGE-partitioned table; it is imported only
    when there is one (a schema without partitions does not pay for it)."""
    if not partitioned:
        return []
    from scripts.schema_diff.partition_health import read_partition_health

    return read_partition_health(conn, schema, partitioned, now)


def health_findings(health: list[PartitionHealth], now: dt.datetime) -> list[Finding]:
    from scripts.schema_diff.partition_health import partition_findings

    return list(partition_findings(health, now))


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


def describe_read_error(exc: DBAPIError, url: URL) -> AlpDbError:
    first = first_line(exc, url)
    if sqlstate(exc) == INSUFFICIENT_PRIVILEGE:
        return PermissionDenied(
            f"cannot check the schema: role {url.username!r} may not read it ({first})",
            "run validate-schema as the schema owner or a role with USAGE on the schema and TEMPORARY"
            " on the database",
        )
    return CannotCheck(f"cannot check the schema of {redact(url)}: {first}", "see the server log for details")
