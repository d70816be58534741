"""Removing values from a PostgreSQL enum type, from a revision, in one transaction.

PostgreSQL can add a value to an enum but never drop one ("ALTER TYPE", Notes; "Enumerated
Types"), so removing values means: a new type with the values kept, every column moved onto
it (``ALTER TABLE ... ALTER COLUMN ... TYPE ... USING col::text::new``, which rewrites the
table under ACCESS EXCLUSIVE), then the old type dropped. PostgreSQL refuses to change the
type of a column that a view reads ("cannot alter type of a column used by a view or rule"),
and an index or CHECK whose expression holds a constant of the old type cannot be rebuilt
against the new one, so those are saved, dropped and re-created around the change.

All of it is one ``DO`` block that reads the catalog when it runs (``pg_get_viewdef``,
``pg_get_indexdef``, ``pg_get_constraintdef``), so online and offline (``--sql``) runs do the
same, and anything it cannot handle raises before anything changes: the revision's
transaction rolls back whole, never halfway. A row still holding a removed value stops it
with the table and column named.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scripts.db.sqltext import literal_text, quote_literal

# The PL/pgSQL run by remove_enum_values. :type and :keep are replaced with SQL literals
# built at call time; every identifier read from the catalog is quoted by format('%I') or a
# regclass/regtype cast, never concatenated.
REMOVE_VALUES_SQL = """\
DO $alp_enum$
DECLARE
    typ regtype := CAST({type} AS regtype);
    keep text[] := {keep};
    old_name text := (SELECT typname || '__old' FROM pg_type WHERE oid = typ);
    type_schema text := (SELECT n.nspname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                         WHERE t.oid = typ);
    removed text[];
    col record;
    obj record;
    held boolean;
    views jsonb := '[]';
    indexes text[] := '{{}}';
    checks text[] := '{{}}';
    defaults text[] := '{{}}';
BEGIN
    SELECT array_agg(enumlabel ORDER BY enumsortorder) INTO removed
    FROM pg_enum WHERE enumtypid = typ AND enumlabel <> ALL (keep);
    IF removed IS NULL THEN
        RETURN;  -- nothing to remove: already done
    END IF;
    CREATE TEMP TABLE alp_enum_columns ON COMMIT DROP AS
    SELECT a.attrelid AS rel, a.attname AS name, a.atttypid <> typ AS is_array,
           pg_get_expr(d.adbin, d.adrelid) AS default_expr
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.atttypid IN (typ, (SELECT typarray FROM pg_type WHERE oid = typ))
      AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND NOT c.relispartition;
    -- 1. a row holding a removed value: stop before anything changes
    FOR col IN SELECT * FROM alp_enum_columns LOOP
        EXECUTE format(CASE WHEN col.is_array THEN 'SELECT EXISTS (SELECT 1 FROM %s WHERE %I::text[] && $1)'
                            ELSE 'SELECT EXISTS (SELECT 1 FROM %s WHERE %I::text = ANY ($1))' END,
                       col.rel::regclass, col.name)
        INTO held USING removed;
        IF held THEN
            RAISE EXCEPTION 'cannot remove % from type %: rows of %.% still hold it',
                array_to_string(removed, ', '), typ, col.rel::regclass, col.name
                USING HINT = 'update or delete those rows first (or leave the value in place)';
        END IF;
    END LOOP;
    -- 2. views reading those columns or the type, and views on those views, deepest last
    FOR obj IN
        WITH RECURSIVE deps(oid, depth) AS (
            SELECT DISTINCT r.ev_class, 1
            FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
            WHERE d.classid = 'pg_rewrite'::regclass
              AND ((d.refclassid = 'pg_class'::regclass
                    AND (d.refobjid, d.refobjsubid) IN (
                        SELECT a.attrelid, a.attnum FROM pg_attribute a
                        JOIN alp_enum_columns ec ON ec.rel = a.attrelid AND ec.name = a.attname))
                   OR (d.refclassid = 'pg_type'::regclass AND d.refobjid = typ))
              AND r.ev_class <> d.refobjid
            UNION
            SELECT r.ev_class, deps.depth + 1
            FROM deps
            JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = deps.oid
            JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
            WHERE r.ev_class <> deps.oid AND deps.depth < 50
        )
        SELECT c.oid, c.relkind, max(deps.depth) AS depth
        FROM deps JOIN pg_class c ON c.oid = deps.oid
        GROUP BY c.oid, c.relkind ORDER BY max(deps.depth) DESC, c.oid
    LOOP
        IF obj.relkind <> 'v' THEN
            RAISE EXCEPTION 'cannot remove % from type %: materialized view % depends on it',
                array_to_string(removed, ', '), typ, obj.oid::regclass
                USING HINT = 'drop and re-create it around this revision by hand';
        END IF;
        views := jsonb_build_object(
            'name', format('%I.%I', (SELECT nspname FROM pg_namespace n JOIN pg_class c
                                     ON c.relnamespace = n.oid WHERE c.oid = obj.oid),
                           (SELECT relname FROM pg_class WHERE oid = obj.oid)),
            'definition', pg_get_viewdef(obj.oid),
            'options', (SELECT array_to_string(reloptions, ', ') FROM pg_class WHERE oid = obj.oid),
            'owner', (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = obj.oid),
            'comment', obj_description(obj.oid, 'pg_class'),
            'column_comments', (SELECT coalesce(jsonb_agg(jsonb_build_array(a.attname, ds.description)), '[]')
                                FROM pg_description ds JOIN pg_attribute a
                                ON a.attrelid = ds.objoid AND a.attnum = ds.objsubid
                                WHERE ds.classoid = 'pg_class'::regclass AND ds.objoid = obj.oid
                                  AND ds.objsubid > 0),
            'grants', (SELECT coalesce(jsonb_agg(jsonb_build_array(
                           CASE WHEN g.grantee = 0 THEN 'PUBLIC'
                                ELSE quote_ident(pg_get_userbyid(g.grantee)) END,
                           g.privilege_type, g.is_grantable)), '[]')
                       FROM pg_class c, aclexplode(c.relacl) g
                       WHERE c.oid = obj.oid AND g.grantee <> c.relowner)
        ) || views;  -- prepended: re-created shallowest first
        EXECUTE format('DROP VIEW %s', obj.oid::regclass);
    END LOOP;
    -- 3. indexes and CHECKs holding constants of the type; column defaults
    FOR obj IN
        SELECT DISTINCT c.oid, c.relkind FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_type'::regclass
          AND d.refobjid = typ AND c.relkind IN ('i', 'I')
    LOOP
        IF obj.relkind = 'I' OR EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = obj.oid) THEN
            RAISE EXCEPTION 'cannot remove % from type %: partitioned index % depends on it',
                array_to_string(removed, ', '), typ, obj.oid::regclass
                USING HINT = 'drop it before this revision and re-create it after';
        END IF;
        indexes := indexes || pg_get_indexdef(obj.oid);
        EXECUTE format('DROP INDEX %s', obj.oid::regclass);
    END LOOP;
    FOR obj IN
        SELECT DISTINCT k.conrelid, k.conname, pg_get_constraintdef(k.oid) AS definition
        FROM pg_depend d JOIN pg_constraint k ON k.oid = d.objid
        WHERE d.classid = 'pg_constraint'::regclass AND d.refclassid = 'pg_type'::regclass
          AND d.refobjid = typ AND k.contype = 'c'
    LOOP
        checks := checks || format('ALTER TABLE %s ADD CONSTRAINT %I %s',
                                   obj.conrelid::regclass, obj.conname, obj.definition);
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', obj.conrelid::regclass, obj.conname);
    END LOOP;
    FOR col IN SELECT * FROM alp_enum_columns WHERE default_expr IS NOT NULL LOOP
        defaults := defaults || format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s',
                                       col.rel::regclass, col.name, col.default_expr);
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', col.rel::regclass, col.name);
    END LOOP;
    -- 4. the new type, the columns moved onto it, the old type gone
    EXECUTE format('ALTER TYPE %s RENAME TO %I', typ, old_name);
    EXECUTE format('CREATE TYPE %I.%I AS ENUM (%s)', type_schema, left(old_name, -5),
                   (SELECT string_agg(quote_literal(v), ', ' ORDER BY n)
                    FROM unnest(keep) WITH ORDINALITY AS k(v, n)));
    FOR col IN SELECT * FROM alp_enum_columns LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE %I.%I%s USING %I::text%s::%I.%I%s',
                       col.rel::regclass, col.name, type_schema, left(old_name, -5),
                       CASE WHEN col.is_array THEN '[]' ELSE '' END, col.name,
                       CASE WHEN col.is_array THEN '[]' ELSE '' END, type_schema, left(old_name, -5),
                       CASE WHEN col.is_array THEN '[]' ELSE '' END);
    END LOOP;
    EXECUTE format('DROP TYPE %I.%I', type_schema, old_name);
    -- 5. everything saved, back in place
    FOR i IN 1 .. coalesce(array_length(defaults, 1), 0) LOOP EXECUTE defaults[i]; END LOOP;
    FOR i IN 1 .. coalesce(array_length(indexes, 1), 0) LOOP EXECUTE indexes[i]; END LOOP;
    FOR i IN 1 .. coalesce(array_length(checks, 1), 0) LOOP EXECUTE checks[i]; END LOOP;
    FOR obj IN SELECT value FROM jsonb_array_elements(views) LOOP
        EXECUTE format('CREATE VIEW %s%s AS %s', obj.value->>'name',
                       CASE WHEN obj.value->>'options' IS NOT NULL
                            THEN format(' WITH (%s)', obj.value->>'options') ELSE '' END,
                       obj.value->>'definition');
        IF obj.value->>'owner' <> current_user THEN
            EXECUTE format('ALTER VIEW %s OWNER TO %I', obj.value->>'name', obj.value->>'owner');
        END IF;
        IF obj.value->>'comment' IS NOT NULL THEN
            EXECUTE format('COMMENT ON VIEW %s IS %L', obj.value->>'name', obj.value->>'comment');
        END IF;
        FOR col IN SELECT value->>0 AS name, value->>1 AS comment
                   FROM jsonb_array_elements(obj.value->'column_comments') LOOP
            EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', obj.value->>'name', col.name, col.comment);
        END LOOP;
        FOR col IN SELECT value->>0 AS grantee, value->>1 AS privilege, (value->>2)::boolean AS grantable
                   FROM jsonb_array_elements(obj.value->'grants') LOOP
            EXECUTE format('GRANT %s ON %s TO %s%s', col.privilege, obj.value->>'name', col.grantee,
                           CASE WHEN col.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
        END LOOP;
    END LOOP;
END
$alp_enum$"""


def remove_enum_values_sql(
    dialect: Any, enum_name: str, keep: Sequence[str], schema: str | None = None
) -> str:
    """The DO block that leaves ``enum_name`` with exactly ``keep``, in that order."""
    prep = dialect.identifier_preparer
    qualified = (prep.quote_schema(schema) + "." if schema else "") + prep.quote(enum_name)
    keep_array = "ARRAY[" + ", ".join(quote_literal(v) for v in keep) + "]::text[]"
    return REMOVE_VALUES_SQL.format(type=quote_literal(qualified), keep=keep_array)


def remove_enum_values(op: Any, enum_name: str, keep: Sequence[str], *, schema: str | None = None) -> None:
    """From a revision: ``enum_name`` keeps only ``keep`` (the values it had before, in order).

    Runs in the revision's transaction; views, indexes, CHECKs and defaults that stand in the
    way are re-created around the change (module docstring). Rewrites every table with a
    column of the type, under ACCESS EXCLUSIVE.
    """
    if not keep:
        raise ValueError("an enum type needs at least one value")
    op.execute(literal_text(remove_enum_values_sql(op.get_context().dialect, enum_name, keep, schema)))
