"""Let PostgreSQL normalise the model's expressions, so they compare by meaning, not by text.

A CHECK written ``score >= 0 AND score <= 1`` is stored and printed by the server as
``CHECK (((score >= (0)::double precision) AND (score <= (1)::double precision)))``; no
text rule on our side gets every such case right. So the model's expressions are created
for real — in the session's temporary namespace, inside a transaction that is rolled back —
and read back through the same catalog reader as the live schema. Nothing is written to
the database and no privilege beyond TEMPORARY is needed ("CREATE TABLE": TEMPORARY).

Building every model table (with its keys, foreign keys and indexes) would cost as much
as Alembic's own comparison; instead the tables are folded into as few "host" tables as
possible — tables whose like-named columns agree on type share one host — and only what
needs the server goes there: CHECK constraints, indexes that are more than bare columns,
partition keys, and each distinct column type and server default (in one table).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Computed, DefaultClause, Index, MetaData, Table, text
from sqlalchemy.dialects.postgresql import ENUM
from sqlalchemy.dialects.postgresql.named_types import CreateEnumType
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.sql.elements import ClauseElement, TextClause
from sqlalchemy.sql.visitors import replacement_traverse

from scripts.db.engine import first_line
from scripts.db.sqlstate import INSUFFICIENT_PRIVILEGE, sqlstate
from scripts.db.sqltext import literal_text
from scripts.errors import CannotNormalise
from scripts.schema_diff import model as m
from scripts.schema_diff.catalog import read_catalog, temp_namespace
from scripts.schema_diff.states import CatalogState, ColumnState, IndexState, TableState

TEMP_SCHEMA = "pg_temp"
HOST_PREFIX = "alp_validate_host_"
TYPES_TABLE = "alp_validate_types"


@dataclass
class Host:
    """A temporary table standing in for one or more model tables."""

    table: Table
    types: dict[str, str] = field(default_factory=dict)  # column name -> type SQL
    checks: list[tuple[str, str]] = field(default_factory=list)  # (name, CHECK expression SQL)


@contextmanager
def scratch(conn: Connection) -> Iterator[None]:
    """A transaction whose every object (temporary tables, types, views) is rolled back."""
    trans = conn.begin_nested() if conn.in_transaction() else conn.begin()
    try:
        yield
    finally:
        trans.rollback()


def adapt(expr: Any, source: Table, host: Table) -> Any:
    """The expression with the model table's columns replaced by the host's."""
    if isinstance(expr, TextClause):
        return expr  # plain SQL text names columns by name: nothing to replace (and cloning is slow)

    def replace(element: Any) -> Any:
        if isinstance(element, Column) and element.table is source:
            return host.c[element.name]
        return None

    return replacement_traverse(expr, {}, replace)  # type: ignore[call-overload]


def own_type(column: Column[Any]) -> Any:
    """A copy of the column's type: attaching a SchemaType (ENUM) to a host table would set
    its schema to pg_temp, and the model's own type object must stay as the model declares it."""
    return column.type.copy()


class Normaliser:
    def __init__(self, conn: Connection, schema: m.ModelSchema) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self.schema = schema
        self.meta = MetaData(schema=TEMP_SCHEMA)
        self.hosts: list[Host] = []
        self.host_of: dict[str, Host] = {}
        self.check_names: dict[tuple[str, str], str] = {}  # (table, constraint) -> host constraint
        self.index_names: dict[tuple[str, str], str] = {}  # (table, index) -> host index
        self.type_columns: dict[tuple[str, str], str] = {}  # (table, column) -> types column
        self.plain_indexes: dict[tuple[str, str], IndexState | None] = {}  # compared without the server
        self._dedupe: dict[tuple[int, str], str] = {}

    # -- planning -------------------------------------------------------------------------
    def host_for(self, table: Table, types: dict[str, str]) -> Host:
        partitioned = m.partition_by(table) is not None
        if not partitioned:
            for host in self.hosts:
                if host.table.dialect_options["postgresql"]["partition_by"]:
                    continue
                if all(host.types.get(name, t) == t for name, t in types.items()):
                    break
            else:
                host = self._new_host(None)
        else:
            host = self._new_host(m.partition_by(table))
        added = []
        for column in table.columns:
            if column.name not in host.types:
                host.types[column.name] = types[column.name]
                added.append(column)
                if column.computed is None:
                    host.table.append_column(Column(column.name, own_type(column)))
        # Generated columns last: their expression names the host's other columns.
        for column in added:
            if column.computed is not None:
                expression = adapt(column.computed.sqltext, table, host.table)
                host.table.append_column(
                    Column(column.name, own_type(column), Computed(expression, persisted=True))
                )
        self.host_of[table.name] = host
        return host

    def _new_host(self, partition_by: str | None) -> Host:
        name = f"{HOST_PREFIX}{len(self.hosts)}"
        kwargs: dict[str, Any] = {"postgresql_partition_by": partition_by} if partition_by else {}
        host = Host(Table(name, self.meta, prefixes=["TEMPORARY"], **kwargs))
        self.hosts.append(host)
        return host

    def _unique(self, host: Host, sql: str, prefix: str) -> tuple[str, bool]:
        """A name for ``sql`` on ``host``; the same expression on the same host is built once."""
        key = (id(host), sql)
        if key in self._dedupe:
            return self._dedupe[key], False
        name = f"{prefix}{len(self._dedupe)}"
        self._dedupe[key] = name
        return name, True

    def _column_key(self, column: Column[Any]) -> str:
        """Type SQL, plus the generation expression: host columns are shared only when both agree."""
        key = m.type_sql(column, self.dialect)
        if column.computed is not None:
            key += f" GENERATED ALWAYS AS ({self._sql(column.computed.sqltext)})"
        return key

    def _default_sql(self, arg: Any) -> str:
        # str() of a clause would build a default dialect per call: a tenth of a second per 1,000
        return arg if isinstance(arg, str) else self._sql(arg)

    def _sql(self, expr: ClauseElement) -> str:
        if isinstance(expr, TextClause):
            return expr.text
        # As the DDL compiler renders a CHECK: values inline, columns without their table.
        return str(
            expr.compile(dialect=self.dialect, compile_kwargs={"literal_binds": True, "include_table": False})
        )

    def plan(self) -> None:
        types = Table(TYPES_TABLE, self.meta, prefixes=["TEMPORARY"])
        seen: dict[tuple[str, str | None], str] = {}
        for table in self.schema.tables.values():
            column_types = {c.name: self._column_key(c) for c in table.columns}
            host = self.host_for(table, column_types)
            for check in m.checks(table):
                sqltext = adapt(check.sqltext, table, host.table)
                sql = self._sql(sqltext)
                name, new = self._unique(host, sql, "k")
                if new:
                    # Added by one ALTER TABLE per host after it is built: a CheckConstraint object
                    # per CHECK would clone each expression on construction (most of plan()'s time).
                    host.checks.append((name, sql))
                self.check_names[(table.name, str(check.name))] = name
            for index in table.indexes:
                plain = m.plain_index_state(index)
                self.plain_indexes[(table.name, str(index.name))] = plain
                if plain is None:
                    self._plan_index(table, index, host)
            for column in table.columns:
                default = column.server_default
                arg = default.arg if isinstance(default, DefaultClause) else None
                key = (m.type_sql(column, self.dialect), None if arg is None else self._default_sql(arg))
                if key not in seen:
                    seen[key] = f"c{len(seen)}"
                    server_default = DefaultClause(arg) if arg is not None else None
                    types.append_column(Column(seen[key], own_type(column), server_default=server_default))
                self.type_columns[(table.name, column.name)] = seen[key]

    def _plan_index(self, table: Table, index: Index, host: Host) -> None:
        options = dict(index.dialect_kwargs)
        where = options.get("postgresql_where")
        if where is not None:
            options["postgresql_where"] = adapt(where, table, host.table)
        exprs = [adapt(e, table, host.table) for e in index.expressions]
        sql = repr(
            (
                index.unique,
                [self._sql(e) for e in exprs],
                sorted(
                    (k, self._sql(v) if isinstance(v, ClauseElement) else repr(v)) for k, v in options.items()
                ),
            )
        )
        name, new = self._unique(host, sql, "x")
        if new:
            Index(name, *exprs, unique=index.unique, _table=host.table, **options)
        self.index_names[(table.name, str(index.name))] = name

    # -- building -------------------------------------------------------------------------
    def build(self) -> CatalogState:
        for enum_name, values in self.schema.enums.items():
            self._execute(
                CreateEnumType(ENUM(*values, name=enum_name, schema=TEMP_SCHEMA)), f"enum {enum_name}"
            )
        checks = {host.table.name: host.checks for host in self.hosts}
        prep = self.dialect.identifier_preparer
        for table in self.meta.sorted_tables:
            self._execute(CreateTable(table), "the model's tables")
            if checks.get(table.name):
                clauses = ", ".join(
                    f"ADD CONSTRAINT {prep.quote(n)} CHECK ({sql})" for n, sql in checks[table.name]
                )
                # The expressions are the models' own SQL (never user input), compiled above.
                statement = f"ALTER TABLE {prep.format_table(table)} {clauses}"
                self._execute(literal_text(statement), "the model's CHECK constraints")
            for index in table.indexes:
                self._execute(CreateIndex(index), "the model's indexes")
        return read_catalog(self.conn, temp_namespace(self.conn), with_owned=False)

    def _execute(self, ddl: object, what: str) -> None:
        try:
            with self.conn.begin_nested():
                self.conn.execute(ddl)  # type: ignore[call-overload]
        except DBAPIError as exc:
            if sqlstate(exc) == INSUFFICIENT_PRIVILEGE:
                raise  # no TEMPORARY right: the caller says the schema could not be checked
            first = first_line(exc, self.conn.engine.url)
            raise CannotNormalise(
                f"the server rejected {what} as the models declare them: {first}",
                "fix the model (an expression PostgreSQL cannot parse cannot match the database)",
            ) from None

    # -- assembling -----------------------------------------------------------------------
    def expected(self, scratch_state: CatalogState) -> CatalogState:
        types = scratch_state.tables[TYPES_TABLE]
        expected = CatalogState(enums=dict(self.schema.enums))
        for table in self.schema.tables.values():
            host = scratch_state.tables[self.host_of[table.name].table.name]
            state = TableState(name=table.name)
            for column in table.columns:
                normal = types.columns[self.type_columns[(table.name, column.name)]]
                identity = column.identity
                state.columns[column.name] = ColumnState(
                    name=column.name,
                    type=normal.type,
                    nullable=bool(column.nullable) and not column.primary_key,
                    default=None
                    if identity is not None
                    else normal.default or m.serial_default(table, column),
                    identity="" if identity is None else ("always" if identity.always else "by default"),
                    generated=None if column.computed is None else host.columns[column.name].generated,
                    collation=normal.collation,
                    comment=column.comment,
                )
            state.primary_key = m.primary_key(table)
            state.foreign_keys = m.foreign_keys(table)
            state.uniques = m.uniques(table)
            state.checks = {
                name: host.checks[self.check_names[(table.name, name)]]
                for name in (str(c.name) for c in m.checks(table))
            }
            for index in table.indexes:
                plain = self.plain_indexes[(table.name, str(index.name))]
                state.indexes[str(index.name)] = (
                    plain
                    if plain is not None
                    else host.indexes[self.index_names[(table.name, str(index.name))]]
                )
            state.partition_key = host.partition_key
            state.persistence = m.persistence(table)
            state.options = m.storage_options(m.pg_options(table).get("with"))
            state.comment = table.comment
            expected.tables[table.name] = state
        return expected


def expected_state(conn: Connection, schema: m.ModelSchema) -> CatalogState:
    """The models as the server would store them; built and rolled back in ``conn``."""
    normaliser = Normaliser(conn, schema)
    normaliser.plan()
    return normaliser.expected(normaliser.build())


VIEW_PREFIX = "alp_validate_view_"
TEMP_VIEWS_SQL = """
SELECT c.relname, pg_get_viewdef(c.oid)
FROM pg_class c WHERE c.relnamespace = pg_my_temp_schema() AND c.relkind = 'v'
"""


def normalise_views(conn: Connection, definitions: dict[str, str]) -> dict[str, str]:
    """Each recorded view definition as this server prints it, by building it as a temporary view.

    Must run before the model's enum types are built in pg_temp: they would shadow the real
    types the views' expressions refer to.
    """
    prep = conn.dialect.identifier_preparer
    temp_names: dict[str, str] = {}
    failed: dict[str, str] = {}
    for n, (name, definition) in enumerate(definitions.items()):
        temp = f"{VIEW_PREFIX}{n}"
        try:
            with conn.begin_nested():
                # The definition comes from the checked-in constant, never from user input.
                conn.exec_driver_sql(f"CREATE TEMPORARY VIEW {prep.quote(temp)} AS {definition}")
        except DBAPIError as exc:
            if sqlstate(exc) == INSUFFICIENT_PRIVILEGE:
                raise
            first = first_line(exc, conn.engine.url)
            failed[name] = f"(cannot be rebuilt on this database: {first})"
            continue
        temp_names[temp] = name
    printed: dict[str, str] = dict(conn.execute(text(TEMP_VIEWS_SQL)).all()) if temp_names else {}
    return {**{name: printed[temp] for temp, name in temp_names.items()}, **failed}
