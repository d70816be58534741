"""The catalog reader: the live schema of one namespace, read with a few pg_catalog queries.

Each query covers every table of the namespace at once (rather than one reflection round
trip per table, as SQLAlchemy's inspector does), which is what makes the validator fast on
a large schema. Expressions come back as PostgreSQL itself prints them (pg_get_expr,
pg_get_constraintdef, pg_get_indexdef: "System Information Functions"), so they compare
equal to the model's expressions once those went through the same server (normalise.py).

Partitions are read only as partition bounds of their parent: their cloned columns,
indexes, constraints and triggers are the parent's (see "Table Partitioning").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection

# pg_constraint.confdeltype / confupdtype ("pg_constraint" in the System Catalogs chapter).
FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
# pg_index.indoption bits (src/include/catalog/pg_index.h).
INDOPTION_DESC = 1
INDOPTION_NULLS_FIRST = 2


@dataclass(frozen=True)
class ColumnState:
    name: str
    type: str  # format_type()
    nullable: bool
    default: str | None  # pg_get_expr(adbin), or None
    identity: str  # '' | 'always' | 'by default'
    generated: str | None = None  # the generation expression of a stored generated column


@dataclass(frozen=True)
class ForeignKeyState:
    columns: tuple[str, ...]
    target: str
    target_columns: tuple[str, ...]
    on_delete: str
    on_update: str

    def describe(self) -> str:
        return (
            f"({', '.join(self.columns)}) REFERENCES {self.target} ({', '.join(self.target_columns)})"
            f" ON DELETE {self.on_delete} ON UPDATE {self.on_update}"
        )


@dataclass(frozen=True)
class IndexState:
    unique: bool
    method: str
    keys: tuple[str, ...]  # a column name or an expression, each with DESC / NULLS when not default
    include: tuple[str, ...]
    predicate: str | None

    def describe(self) -> str:
        text_ = f"{'UNIQUE ' if self.unique else ''}USING {self.method} ({', '.join(self.keys)})"
        if self.include:
            text_ += f" INCLUDE ({', '.join(self.include)})"
        if self.predicate:
            text_ += f" WHERE {self.predicate}"
        return text_


@dataclass
class TableState:
    name: str
    columns: dict[str, ColumnState] = field(default_factory=dict)
    primary_key: tuple[str, tuple[str, ...]] | None = None  # (name, columns)
    foreign_keys: dict[str, ForeignKeyState] = field(default_factory=dict)
    uniques: dict[str, tuple[str, ...]] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)  # name -> pg_get_constraintdef
    indexes: dict[str, IndexState] = field(default_factory=dict)  # not backing a constraint
    partition_key: str | None = None  # pg_get_partkeydef, e.g. 'RANGE (attempted_at)'
    partitions: dict[str, str] = field(default_factory=dict)  # name -> bound ('DEFAULT', 'FOR VALUES ...')


@dataclass(frozen=True)
class TriggerState:
    table: str
    name: str
    definition: str  # pg_get_triggerdef
    enabled: bool


@dataclass(frozen=True)
class FunctionState:
    name: str
    arguments: str
    result: str
    language: str
    body: str  # prosrc, kept verbatim by the server


@dataclass
class CatalogState:
    tables: dict[str, TableState] = field(default_factory=dict)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    triggers: dict[str, TriggerState] = field(default_factory=dict)  # 'table.name' -> trigger
    functions: dict[str, FunctionState] = field(default_factory=dict)
    views: dict[str, str] = field(default_factory=dict)  # name -> pg_get_viewdef


TABLES_SQL = """
SELECT c.relname, pg_get_partkeydef(c.oid), c.relispartition,
       pg_get_expr(c.relpartbound, c.oid), parent.relname
FROM pg_class c
LEFT JOIN pg_inherits inh ON inh.inhrelid = c.oid AND c.relispartition
LEFT JOIN pg_class parent ON parent.oid = inh.inhparent
WHERE c.relnamespace = :ns AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""

COLUMNS_SQL = """
SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
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
       END
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
WHERE c.relnamespace = :ns AND NOT c.relispartition AND con.conparentid = 0
  AND con.contype IN ('p', 'f', 'u', 'c')
ORDER BY c.relname, con.conname
"""

# Indexes that back a PRIMARY KEY / UNIQUE / EXCLUDE constraint are compared as constraints.
# Expression keys (indkey 0) are printed by pg_get_indexdef, only for indexes that have any.
INDEXES_SQL = """
SELECT c.relname, ic.relname, i.indisunique, am.amname, i.indnkeyatts, i.indkey::int2[],
       CASE WHEN i.indexprs IS NOT NULL THEN
           ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, false) FROM generate_series(1, i.indnatts) k)
       END,
       i.indoption::int2[], pg_get_expr(i.indpred, i.indrelid)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_am am ON am.oid = ic.relam
WHERE c.relnamespace = :ns AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid
                  AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))
ORDER BY c.relname, ic.relname
"""

ENUMS_SQL = """
SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
WHERE t.typnamespace = :ns
GROUP BY t.typname
ORDER BY t.typname
"""

# Internal triggers implement foreign keys; clones on partitions follow their parent's.
TRIGGERS_SQL = """
SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled <> 'D'
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = :ns AND NOT t.tgisinternal AND NOT c.relispartition
ORDER BY c.relname, t.tgname
"""

# Functions that belong to an extension are the extension's business (deptype 'e').
FUNCTIONS_SQL = """
SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid),
       l.lanname, p.prosrc
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.pronamespace = :ns
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY p.proname
"""

VIEWS_SQL = """
SELECT c.relname, pg_get_viewdef(c.oid)
FROM pg_class c
WHERE c.relnamespace = :ns AND c.relkind IN ('v', 'm')
ORDER BY c.relname
"""

CURRENT_NAMESPACE_SQL = "SELECT oid FROM pg_namespace WHERE nspname = current_schema()"
TEMP_NAMESPACE_SQL = "SELECT pg_my_temp_schema()"


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


def read_catalog(conn: Connection, namespace: int, *, with_owned: bool = True) -> CatalogState:
    """Everything the validator compares in one namespace (by oid)."""
    state = CatalogState()
    params = {"ns": namespace}
    tables = state.tables
    relations = conn.execute(text(TABLES_SQL), params).all()
    for name, partkey, is_partition, _, _ in relations:
        if not is_partition:
            tables[name] = TableState(name=name, partition_key=partkey)
    for name, _, is_partition, bound, parent in relations:
        if is_partition and parent in tables:
            tables[parent].partitions[name] = bound
    attnames: dict[tuple[str, int], str] = {}
    for table, num, col, type_, notnull, default, identity, generated in conn.execute(
        text(COLUMNS_SQL), params
    ):
        attnames[(table, num)] = col
        stored = generated == "s"
        tables[table].columns[col] = ColumnState(
            name=col,
            type=type_,
            nullable=not notnull,
            default=None if stored else default,
            identity={"a": "always", "d": "by default"}.get(identity, ""),
            generated=default if stored else None,
        )
    for row in conn.execute(text(CONSTRAINTS_SQL), params):
        table, name, kind, definition, keys, target, target_keys, on_delete, on_update, foreign_cols = row
        state_ = tables[table]
        cols = tuple(attnames[(table, k)] for k in keys or ())
        if kind == "p":
            state_.primary_key = (name, cols)
        elif kind == "u":
            state_.uniques[name] = cols
        elif kind == "c":
            state_.checks[name] = definition
        else:
            target_cols = foreign_cols or [attnames[(target, k)] for k in target_keys]
            state_.foreign_keys[name] = ForeignKeyState(
                cols, target, tuple(target_cols), FK_ACTIONS[on_delete], FK_ACTIONS[on_update]
            )
    for row in conn.execute(text(INDEXES_SQL), params):
        table, name, unique, method, nkey, indkey, printed, options, predicate = row
        keys = [attnames[(table, k)] if k else printed[n] for n, k in enumerate(indkey)]
        tables[table].indexes[name] = IndexState(
            unique=unique,
            method=method,
            keys=tuple(index_key(k, o) for k, o in zip(keys[:nkey], options[:nkey], strict=True)),
            include=tuple(keys[nkey:]),
            predicate=predicate,
        )
    for name, labels in conn.execute(text(ENUMS_SQL), params):
        state.enums[name] = tuple(labels)
    if with_owned:
        read_owned(conn, params, state)
    return state


def read_owned(conn: Connection, params: dict[str, int], state: CatalogState) -> None:
    """Triggers, functions and views: the objects revisions own and models cannot express."""
    for table, name, definition, enabled in conn.execute(text(TRIGGERS_SQL), params):
        state.triggers[f"{table}.{name}"] = TriggerState(table, name, definition, enabled)
    for name, args, result, language, body in conn.execute(text(FUNCTIONS_SQL), params):
        key = f"{name}({args})"
        state.functions[key] = FunctionState(name, args, result, language, body)
    for name, definition in conn.execute(text(VIEWS_SQL), params):
        state.views[name] = definition


def current_namespace(conn: Connection) -> int:
    return int(conn.scalar(text(CURRENT_NAMESPACE_SQL)))


def temp_namespace(conn: Connection) -> int:
    return int(conn.scalar(text(TEMP_NAMESPACE_SQL)))
