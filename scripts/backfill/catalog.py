"""What the catalog says about a data migration's table: which relation, which key to walk by,
and whether SET and WHERE mean something for it (planned by EXPLAIN, never executed)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from scripts.backfill.autocommit import explicit_transaction
from scripts.backfill.plan import Plan, split_table
from scripts.backfill.sql import Statements
from scripts.db.engine import first_line
from scripts.errors import DataMigrationError

# Unique btree indexes without predicate or expression whose key columns are all NOT NULL:
# the keys that give a total order to walk by. Primary key first.
_USABLE_KEYS = text(
    """
    SELECT array_agg(a.attname::text ORDER BY k.ord) AS cols, i.indisprimary
    FROM pg_index i
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
    CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = :oid AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
      AND k.ord <= i.indnkeyatts
    GROUP BY i.indexrelid, i.indisprimary
    HAVING bool_and(a.attnotnull)
    ORDER BY i.indisprimary DESC, count(*), min(ic.relname)
    """
)

_HAS_MAX = text(
    """
    SELECT EXISTS (
        SELECT 1 FROM pg_aggregate g
        JOIN pg_proc p ON p.oid = g.aggfnoid
        JOIN pg_attribute a ON a.attrelid = :oid AND a.attname = :col
        WHERE p.proname = 'max' AND p.pronamespace = 'pg_catalog'::regnamespace
          AND p.pronargs = 1 AND p.proargtypes[0] = a.atttypid
    )
    """
)


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    relname: str
    estimated_rows: int | None


def resolve_relation(conn: Connection, table: str) -> Relation:
    split_table(table)
    try:
        # to_regclass parses the name as SQL does (search_path, quoting) and is NULL when absent
        row = conn.execute(
            text(
                "SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(:name)"
            ),
            {"name": table},
        ).first()
    except DBAPIError:  # a name that is not even a name ("a.b.c.d"); autocommit: nothing left open
        row = None
    if row is None:
        raise DataMigrationError(
            f"table {table!r} does not exist", "check the name (schema.table for another schema)"
        )
    if row.relkind not in ("r", "p"):
        raise DataMigrationError(f"{table!r} is not a table", "a data migration updates a table's rows")
    estimate = conn.scalar(
        text(
            # the table, or the partitions of a partitioned one (-1: never analysed)
            "SELECT sum(greatest(c.reltuples, 0))::bigint FROM pg_class c WHERE c.relkind = 'r'"
            " AND (c.oid = :oid OR c.oid IN (SELECT relid FROM pg_partition_tree(:oid)))"
        ),
        {"oid": row.oid},
    )
    return Relation(row.oid, row.nspname, row.relname, int(estimate) if estimate else None)


def resolve_key(
    conn: Connection, relation: Relation, table: str, key: tuple[str, ...] | None
) -> tuple[str, ...]:
    """The key given (checked to be a usable one), or the best usable key of the table."""
    usable = [tuple(r.cols) for r in conn.execute(_USABLE_KEYS, {"oid": relation.oid})]
    if key is None:
        if not usable:
            raise DataMigrationError(
                f"table {table!r} has no key to walk by"
                " (no primary key, no unique index on NOT NULL columns)",
                "add a primary key, or pass --key with the columns of a unique index on NOT NULL columns",
            )
        return usable[0]
    columns = set(
        conn.scalars(
            text(
                "SELECT attname::text FROM pg_attribute"
                " WHERE attrelid = :oid AND attnum > 0 AND NOT attisdropped"
            ),
            {"oid": relation.oid},
        )
    )
    unknown = [c for c in key if c not in columns]
    if unknown:
        raise DataMigrationError(
            f"table {table!r} has no column {', '.join(map(repr, unknown))}",
            "pass --key with existing column names (the primary key is the default)",
        )
    if key not in usable:
        choices = "; ".join(", ".join(cols) for cols in usable) or "none"
        raise DataMigrationError(
            f"({', '.join(key)}) is not a usable key of {table!r}: no unique index on exactly these"
            " NOT NULL columns in this order",
            f"use one of: {choices}",
        )
    return key


def key_has_max(conn: Connection, relation: Relation, key: tuple[str, ...]) -> bool:
    if len(key) != 1:
        return False
    return conn.scalar(_HAS_MAX, {"oid": relation.oid, "col": key[0]}) is True


def validate_expressions(conn: Connection, plan: Plan) -> None:
    """EXPLAIN (never executed, rolled back): a bad SET or WHERE fails before anything changes."""
    sql = Statements(conn.dialect, plan)
    checks = [("SET", plan.set_, sql.explain_set())]
    if plan.where:
        checks.append(("WHERE", plan.where, sql.explain_where()))
    for label, expr, statement in checks:
        try:
            with explicit_transaction(conn, commit=False):
                # is_local => the setting ends with this transaction (SET LOCAL)
                conn.execute(
                    text("SELECT set_config('lock_timeout', :v, true)"), {"v": plan.options.lock_timeout}
                )
                conn.execute(statement)
        except DBAPIError as exc:
            raise DataMigrationError(
                f"{label} {expr!r} is not valid for table {plan.table!r}: {first_line(exc, conn.engine.url)}",
                f"fix the {label} expression; nothing was changed",
            ) from None
