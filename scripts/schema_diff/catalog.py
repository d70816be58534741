"""The catalog reader: the live schema of one namespace, read with a few pg_catalog queries.

Each query covers every table of the namespace at once (rather than one reflection round
trip per table, as SQLAlchemy's inspector does), which is what makes the validator fast on
a large schema. Expressions come back as PostgreSQL itself prints them (pg_get_expr,
pg_get_constraintdef, pg_get_indexdef: "System Information Functions"), so they compare
equal to the model's expressions once those went through the same server (normalise.py).

Partitions are read only as partition bounds of their parent: their cloned columns,
indexes, constraints and triggers are the parent's (see "Table Partitioning"). What the
revisions own and the models cannot express (triggers, functions, privileges...) is read
by catalog_owned.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection

from scripts.db.schema import ENV_SCHEMA
from scripts.errors import CannotCheck
from scripts.schema_diff.states import (
    CatalogState,
    ColumnState,
    ForeignKeyState,
    FunctionState,
    IndexState,
    TableState,
    TriggerState,
    UniqueState,
)

__all__ = [
    "CatalogState",
    "ColumnState",
    "ForeignKeyState",
    "FunctionState",
    "IndexState",
    "TableState",
    "TriggerState",
    "UniqueState",
    "current_namespace",
    "namespace_of",
    "open_schema",
    "read_catalog",
    "temp_namespace",
]

# pg_constraint.confdeltype / confupdtype ("pg_constraint" in the System Catalogs chapter).
FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
# pg_index.indoption bits (src/include/catalog/pg_index.h).
INDOPTION_DESC = 1
INDOPTION_NULLS_FIRST = 2
# pg_class.relpersistence
PERSISTENCE = {"p": "", "u": "UNLOGGED", "t": "TEMPORARY"}
# pg_index.indnullsnotdistinct exists from PostgreSQL 15 ("CREATE INDEX": NULLS NOT DISTINCT).
NULLS_NOT_DISTINCT_MIN_VERSION = 150000

TABLES_SQL = """
SELECT c.relname, pg_get_partkeydef(c.oid), c.relispartition,
       pg_get_expr(c.relpartbound, c.oid), parent.relname, c.relpersistence, c.reloptions, ds.description
FROM pg_class c
LEFT JOIN pg_inherits inh ON inh.inhrelid = c.oid AND c.relispartition
LEFT JOIN pg_class parent ON parent.oid = inh.inhparent
LEFT JOIN pg_description ds ON ds.objoid = c.oid AND ds.classoid = 'pg_class'::regclass AND ds.objsubid = 0
WHERE c.relnamespace = :ns AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""

# A collation is named only where it is not the type's default ("Collation Support").
COLUMNS_SQL = """
SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname END, ds.description
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_description ds ON ds.objoid = a.attrelid AND ds.classoid = 'pg_class'::regclass
     AND ds.objsubid = a.attnum
WHERE c.relnamespace = :ns AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""

# conparentid <> 0 marks a constraint cloned from a parent's (PG 12+). Key columns come as
# attribute numbers, named from COLUMNS_SQL's rows: a correlated unnest() per constraint
# would make this the slowest query by far. A target in another schema is named here.
CONSTRAINTS_SQL = """
SELECT c.relname, con.conname, con.contype,
       CASE WHEN con.contype = 'c' THEN pg_get_constraintdef(con.oid) END,
       con.conkey, fc.relname, con.confkey, con.confdeltype, con.confupdtype,
       CASE WHEN fc.relnamespace <> c.relnamespace THEN
           ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, ord)
                 JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.ord)
       END,
       con.condeferrable, con.condeferred, con.convalidated, {nulls_not_distinct}
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_index ci ON ci.indexrelid = con.conindid AND con.contype = 'u'
WHERE c.relnamespace = :ns AND NOT c.relispartition AND con.conparentid = 0
  AND con.contype IN ('p', 'f', 'u', 'c')
ORDER BY c.relname, con.conname
"""

# Indexes that back a PRIMARY KEY / UNIQUE / EXCLUDE constraint are compared as constraints.
# Expression keys (indkey 0) are printed by pg_get_indexdef, only for indexes that have any.
# Operator classes and collations come as oids, named below only where not the default.
INDEXES_SQL = """
SELECT c.relname, ic.relname, i.indisunique, am.amname, i.indnkeyatts, i.indkey::int2[],
       CASE WHEN i.indexprs IS NOT NULL THEN
           ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, false) FROM generate_series(1, i.indnatts) k)
       END,
       i.indoption::int2[], pg_get_expr(i.indpred, i.indrelid), i.indclass::oid[],
       i.indcollation::oid[], ic.reloptions, {nulls_not_distinct}
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_am am ON am.oid = ic.relam
WHERE c.relnamespace = :ns AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid
                  AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))
ORDER BY c.relname, ic.relname
"""

# Operator classes that are not their type's default (text_pattern_ops...): few, read once.
OPCLASSES_SQL = "SELECT oid, opcname FROM pg_opclass WHERE NOT opcdefault"
COLLATIONS_SQL = "SELECT oid, collname FROM pg_collation WHERE oid = ANY(:oids)"

ENUMS_SQL = """
SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
WHERE t.typnamespace = :ns
GROUP BY t.typname
ORDER BY t.typname
"""

CURRENT_NAMESPACE_SQL = "SELECT oid FROM pg_namespace WHERE nspname = current_schema()"
NAMESPACE_SQL = "SELECT oid FROM pg_namespace WHERE nspname = :name"
TEMP_NAMESPACE_SQL = "SELECT pg_my_temp_schema()"
SERVER_VERSION_SQL = "SELECT current_setting('server_version_num')::int"


@dataclass
class _Names:
    """Column names by attribute number, and the non-default opclasses and collations."""

    columns: dict[tuple[str, int], str] = field(default_factory=dict)
    column_collations: dict[tuple[str, int], int] = field(default_factory=dict)
    opclasses: dict[int, str] = field(default_factory=dict)


def index_key(name: str, option: int) -> str:
    """A key as CREATE INDEX writes it: DESC implies NULLS FIRST, ASC implies NULLS LAST."""
    desc = bool(option & INDOPTION_DESC)
    nulls_first = bool(option & INDOPTION_NULLS_FIRST)
    key = name + (" DESC" if desc else "")
    if nulls_first and not desc:
        key += " NULLS FIRST"
    elif desc and not nulls_first:
        key += " NULLS LAST"
    return key


def deferrable(is_deferrable: bool, is_deferred: bool) -> str:
    if not is_deferrable:
        return ""
    return "DEFERRABLE INITIALLY DEFERRED" if is_deferred else "DEFERRABLE INITIALLY IMMEDIATE"


def storage_options(reloptions: list[str] | None) -> tuple[str, ...]:
    """``{fillfactor=70}`` as a sorted tuple ("Storage Parameters" in CREATE TABLE)."""
    return tuple(sorted(reloptions or ()))


def server_version(conn: Connection) -> int:
    return int(conn.scalar(text(SERVER_VERSION_SQL)))


def read_catalog(conn: Connection, namespace: int, *, with_owned: bool = True) -> CatalogState:
    """Everything the validator compares in one namespace (by oid)."""
    state = CatalogState()
    params = {"ns": namespace}
    nnd = "{}.indnullsnotdistinct" if server_version(conn) >= NULLS_NOT_DISTINCT_MIN_VERSION else "false"
    read_tables(conn, params, state)
    names = _Names()
    read_columns(conn, params, state, names)
    read_constraints(conn, params, state, names, nnd.format("ci"))
    read_indexes(conn, params, state, names, nnd.format("i"))
    for name, labels in conn.execute(text(ENUMS_SQL), params):
        state.enums[name] = tuple(labels)
    if with_owned:
        from scripts.schema_diff.catalog_owned import read_owned

        read_owned(conn, namespace, state)
    return state


def read_tables(conn: Connection, params: dict[str, int], state: CatalogState) -> None:
    tables = state.tables
    relations = conn.execute(text(TABLES_SQL), params).all()
    for name, partkey, is_partition, _, _, persistence, options, comment in relations:
        if not is_partition:
            tables[name] = TableState(
                name=name,
                partition_key=partkey,
                persistence=PERSISTENCE.get(persistence, ""),
                options=storage_options(options),
                comment=comment,
            )
    for name, _, is_partition, bound, parent, *_ in relations:
        if is_partition and parent in tables:
            tables[parent].partitions[name] = bound


def read_columns(conn: Connection, params: dict[str, int], state: CatalogState, names: _Names) -> None:
    for row in conn.execute(text(COLUMNS_SQL), params):
        table, num, col, type_, notnull, default, identity, generated, collation, comment = row
        names.columns[(table, num)] = col
        stored = generated == "s"
        state.tables[table].columns[col] = ColumnState(
            name=col,
            type=type_,
            nullable=not notnull,
            default=None if stored else default,
            identity={"a": "always", "d": "by default"}.get(identity, ""),
            generated=default if stored else None,
            collation=collation,
            comment=comment,
        )


def read_constraints(
    conn: Connection, params: dict[str, int], state: CatalogState, names: _Names, nnd: str
) -> None:
    tables = state.tables
    attnames = names.columns
    for row in conn.execute(text(CONSTRAINTS_SQL.format(nulls_not_distinct=nnd)), params):
        table, name, kind, definition, keys, target, target_keys, on_delete, on_update, foreign_cols = row[
            :10
        ]
        is_deferrable, is_deferred, validated, nulls_not_distinct = row[10:]
        state_ = tables[table]
        cols = tuple(attnames[(table, k)] for k in keys or ())
        defer = deferrable(is_deferrable, is_deferred)
        if kind == "p":
            state_.primary_key = (name, cols)
        elif kind == "u":
            state_.uniques[name] = UniqueState(cols, defer, bool(nulls_not_distinct))
        elif kind == "c":
            state_.checks[name] = definition
        else:
            target_cols = foreign_cols or [attnames[(target, k)] for k in target_keys]
            state_.foreign_keys[name] = ForeignKeyState(
                cols,
                target,
                tuple(target_cols),
                FK_ACTIONS[on_delete],
                FK_ACTIONS[on_update],
                defer,
                bool(validated),
            )


def read_indexes(
    conn: Connection, params: dict[str, int], state: CatalogState, names: _Names, nnd: str
) -> None:
    rows = conn.execute(text(INDEXES_SQL.format(nulls_not_distinct=nnd)), params).all()
    if not rows:
        return
    opclasses: dict[int, str] = dict(conn.execute(text(OPCLASSES_SQL)).all())
    used = sorted({oid for row in rows for oid in row[10] if oid})
    collations: dict[int, str] = dict(conn.execute(text(COLLATIONS_SQL), {"oids": used}).all())
    attnames = names.columns
    for row in rows:
        table, name, unique, method, nkey, indkey, printed, options, predicate = row[:9]
        classes, index_collations, reloptions, nulls_not_distinct = row[9:]
        columns = state.tables[table].columns
        keys = []
        for n, k in enumerate(indkey[:nkey]):
            key = attnames[(table, k)] if k else printed[n]
            collation = collations.get(index_collations[n])
            own = columns[attnames[(table, k)]].collation if k else None
            if collation is not None and collation != own and collation != "default":
                key += f' COLLATE "{collation}"'
            if classes[n] in opclasses:
                key += f" {opclasses[classes[n]]}"
            keys.append(index_key(key, options[n]))
        include = [attnames[(table, k)] if k else printed[nkey + n] for n, k in enumerate(indkey[nkey:])]
        state.tables[table].indexes[name] = IndexState(
            unique=unique,
            method=method,
            keys=tuple(keys),
            include=tuple(include),
            predicate=predicate,
            nulls_not_distinct=bool(nulls_not_distinct),
            options=storage_options(reloptions),
        )


def current_namespace(conn: Connection) -> int:
    """The session's first schema: right only where the session's search_path was set to
    the target schema first (see scripts/db/schema.py)."""
    return int(conn.scalar(text(CURRENT_NAMESPACE_SQL)))


def namespace_of(conn: Connection, schema: str) -> int | None:
    value = conn.scalar(text(NAMESPACE_SQL), {"name": schema})
    return None if value is None else int(value)


def temp_namespace(conn: Connection) -> int:
    return int(conn.scalar(text(TEMP_NAMESPACE_SQL)))


def open_schema(conn: Connection, schema: str) -> int:
    """Point the session's search_path at the target schema alone and return its oid.

    Expressions are then printed as the revisions' sessions stored them, and nothing a
    database- or role-level search_path says can shift what is compared (scripts/db/schema.py).
    """
    namespace = namespace_of(conn, schema)
    if namespace is None:
        raise CannotCheck(
            f"schema {schema!r} does not exist in this database",
            f"set {ENV_SCHEMA} (or --schema) to the schema the revisions target; the default is public",
        )
    conn.execute(text("SELECT set_config('search_path', quote_ident(:s), false)"), {"s": schema})
    return namespace
