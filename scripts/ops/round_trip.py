"""Every revision not yet applied: upgrade, downgrade, upgrade, leaving the same schema.

A downgrade that fails, does half, or leaves something behind is found here, in CI, before
the revision merges, rather than in production when someone needs to roll back. The schema is
compared through the catalog (the server's own deparsed definitions), so no client binaries
are needed against a database of your choosing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import URL

from scripts.db.target import session
from scripts.errors import AlpDbError
from scripts.migrations.ownership import CHECKPOINT_TABLE_NAME

# Written by Alembic and the runtime as revisions run, not by the revisions: a downgrade to
# base leaves them in place on purpose.
RUNTIME_TABLES = ("alembic_version", "migration_history", CHECKPOINT_TABLE_NAME)

# One text row per schema object of the current schema, each as the server deparses it.
SCHEMA_FINGERPRINT = text(
    """
    WITH rels AS (
        SELECT c.oid, c.relname, c.relkind FROM pg_class c
        WHERE c.relnamespace = to_regnamespace(current_schema())::oid
          AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND NOT (c.relname = ANY (:runtime))
          AND NOT EXISTS (  -- nor what they own (migration_history's id sequence)
              SELECT 1 FROM pg_depend d JOIN pg_class o ON o.oid = d.refobjid
              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                AND d.refclassid = 'pg_class'::regclass AND o.relname = ANY (:runtime))
    )
    SELECT 'relation ' || relname || ' ' || relkind::text FROM rels
    UNION ALL
    SELECT 'column ' || r.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
           || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
    FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    UNION ALL
    SELECT 'constraint ' || r.relname || '.' || k.conname || ' ' || pg_get_constraintdef(k.oid)
    FROM rels r JOIN pg_constraint k ON k.conrelid = r.oid
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM rels r JOIN pg_index i ON i.indrelid = r.oid
    UNION ALL
    SELECT 'view ' || relname || ' ' || pg_get_viewdef(oid) FROM rels WHERE relkind IN ('v', 'm')
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM rels r JOIN pg_trigger t ON t.tgrelid = r.oid
    WHERE NOT t.tgisinternal
    UNION ALL
    SELECT 'type ' || t.typname || ' ' || coalesce(
        (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e
         WHERE e.enumtypid = t.oid), t.typtype::text)
    FROM pg_type t
    WHERE t.typnamespace = to_regnamespace(current_schema())::oid AND t.typtype IN ('e', 'd', 'c')
      AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid)
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure::text || ' ' || md5(p.prosrc) FROM pg_proc p
    WHERE p.pronamespace = to_regnamespace(current_schema())::oid
    ORDER BY 1
    """
)


@dataclass(frozen=True)
class RoundTrip:
    revisions: list[str]  # round-tripped, oldest first


class RoundTripFailed(AlpDbError):
    """A revision's downgrade failed, or left the schema other than it found it."""


def schema_fingerprint(url: URL) -> list[str]:
    with session(url) as conn:
        return list(conn.scalars(SCHEMA_FINGERPRINT, {"runtime": list(RUNTIME_TABLES)}))


def round_trip_pending(url: URL) -> RoundTrip:
    """Bring ``url`` to head one revision at a time, each upgraded, downgraded and upgraded again."""
    from scripts.migrations import api as migrations
    from scripts.migrations.reversibility import reversibility

    script = migrations.script_directory()
    current = migrations.current_revision(url)
    pending = list(reversed(list(script.iterate_revisions("heads", current or "base"))))
    pending = [rev for rev in pending if rev.revision != current]
    done: list[str] = []
    for rev in pending:
        reason = reversibility(rev.path)
        if reason:
            raise RoundTripFailed(
                f"revision {rev.revision} cannot be rolled back: {reason}",
                "write its downgrade(), or raise IrreversibleRevision in it saying why",
            )
        before = schema_fingerprint(url)
        migrations.upgrade(url, rev.revision)
        after = schema_fingerprint(url)
        try:
            migrations.downgrade(url, rev.down_revision or "base")  # type: ignore[arg-type]
        except AlpDbError as exc:
            raise RoundTripFailed(
                f"revision {rev.revision}: its downgrade failed: {exc.message}", exc.hint
            ) from exc
        left = schema_fingerprint(url)
        if left != before:
            extra = sorted(set(left) - set(before)) or sorted(set(before) - set(left))
            raise RoundTripFailed(
                f"revision {rev.revision}: downgrade left the schema changed ({extra[0][:160]})",
                "make downgrade() undo exactly what upgrade() does",
            )
        migrations.upgrade(url, rev.revision)
        if schema_fingerprint(url) != after:
            raise RoundTripFailed(
                f"revision {rev.revision}: upgrade after its downgrade gave another schema",
                "make downgrade() undo exactly what upgrade() does",
            )
        done.append(rev.revision)
    return RoundTrip(done)
