"""The model reader: what the declarative models say the schema is, before normalisation.

Structure (columns, keys, foreign keys, plain indexes, enum values) is read straight from
the MetaData; expressions (types, defaults, CHECKs, index expressions and predicates,
partition keys) are left as SQLAlchemy objects for normalise.py to pass through the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import CheckConstraint, Column, Enum, ForeignKeyConstraint, Index, MetaData, Table
from sqlalchemy import UniqueConstraint as SaUnique
from sqlalchemy.engine import Dialect

from scripts.migrations.ownership import ignored_tables
from scripts.schema_diff.states import ForeignKeyState, IndexState, UniqueState

DEFAULT_INDEX_METHOD = "btree"


@dataclass
class ModelSchema:
    tables: dict[str, Table] = field(default_factory=dict)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ignored_tables: frozenset[str] = frozenset()


def pg_options(obj: Any) -> dict[str, Any]:
    """The ``postgresql_*`` options given to a schema item, without building the dialect's
    defaults for items that were given none (that lookup is a large part of reading 1,000
    tables; SQLAlchemy fills ``dialect_options`` lazily, on first access per item)."""
    options = obj.dialect_options
    return dict(options["postgresql"]._non_defaults) if "postgresql" in options else {}


def read_models(metadata: MetaData) -> ModelSchema:
    """The tables to compare (runtime-owned ones left out) and the enum types they use."""
    ignored = ignored_tables(metadata)
    schema = ModelSchema(ignored_tables=ignored)
    for table in metadata.tables.values():  # no need for sorted_tables' dependency sort
        if table.name in ignored:
            continue
        schema.tables[table.name] = table
        for column in table.columns:
            if isinstance(column.type, Enum) and column.type.native_enum and column.type.name:
                schema.enums[column.type.name] = tuple(column.type.enums)
    return schema


def foreign_key_state(fk: ForeignKeyConstraint) -> ForeignKeyState:
    return ForeignKeyState(
        columns=tuple(fk.column_keys),
        target=fk.referred_table.name,
        target_columns=tuple(el.column.name for el in fk.elements),
        on_delete=(fk.ondelete or "NO ACTION").upper(),
        on_update=(fk.onupdate or "NO ACTION").upper(),
        deferrable=deferrable(fk.deferrable, fk.initially),
        validated=not pg_options(fk).get("not_valid"),
    )


def deferrable(is_deferrable: bool | None, initially: str | None) -> str:
    """As pg_constraint says it: INITIALLY DEFERRED implies DEFERRABLE ("CREATE TABLE")."""
    deferred = (initially or "").upper() == "DEFERRED"
    if not (is_deferrable or deferred):
        return ""
    return "DEFERRABLE INITIALLY DEFERRED" if deferred else "DEFERRABLE INITIALLY IMMEDIATE"


def unique_state(constraint: SaUnique, columns: tuple[str, ...]) -> UniqueState:
    return UniqueState(
        columns,
        deferrable(constraint.deferrable, constraint.initially),
        bool(pg_options(constraint).get("nulls_not_distinct")),
    )


def persistence(table: Table) -> str:
    """UNLOGGED comes through ``Table(..., prefixes=["UNLOGGED"])``."""
    return "UNLOGGED" if any(p.upper() == "UNLOGGED" for p in table._prefixes) else ""


def storage_options(options: dict[str, object] | None) -> tuple[str, ...]:
    """``postgresql_with={"fillfactor": 70}`` as reloptions prints it: ``fillfactor=70``."""
    return tuple(sorted(f"{k.lower()}={v}" for k, v in (options or {}).items()))


def primary_key(table: Table) -> tuple[str, tuple[str, ...]] | None:
    pk = table.primary_key
    if not pk.columns:
        return None
    return (str(pk.name), tuple(c.name for c in pk.columns))


def foreign_keys(table: Table) -> dict[str, ForeignKeyState]:
    return {
        str(c.name): foreign_key_state(c) for c in table.constraints if isinstance(c, ForeignKeyConstraint)
    }


def uniques(table: Table) -> dict[str, UniqueState]:
    found = {
        str(c.name): unique_state(c, tuple(col.name for col in c.columns))
        for c in table.constraints
        if type(c) is SaUnique
    }
    # Column(unique=True) becomes a constraint only at DDL time; its name comes from the naming
    # convention, applied here to a throwaway copy so the model itself is left untouched.
    singles = [c for c in table.columns if c.unique and not c.index]
    if singles:
        copy = table.to_metadata(MetaData(naming_convention=table.metadata.naming_convention))
        for column in singles:
            if any(u.columns == (column.name,) for u in found.values()):
                continue
            constraint = SaUnique(copy.c[column.name])
            copy.append_constraint(constraint)
            found[str(constraint.name)] = UniqueState((column.name,))
    return found


def checks(table: Table) -> list[CheckConstraint]:
    found = [c for c in table.constraints if isinstance(c, CheckConstraint)]
    # Column-level CHECKs (Column(..., CheckConstraint(...))) are kept on the column.
    for column in table.columns:
        found.extend(c for c in column.constraints if isinstance(c, CheckConstraint))
    return found


def plain_index_state(index: Index) -> IndexState | None:
    """An index on bare columns, compared without the server; None when it needs one."""
    options = pg_options(index)
    if any(v is not None and v != {} and v is not False for k, v in options.items() if k != "using"):
        return None  # a predicate, operator class, INCLUDE...: built in the scratch namespace
    if not all(isinstance(e, Column) for e in index.expressions):
        return None
    method = options.get("using") or DEFAULT_INDEX_METHOD
    return IndexState(
        unique=bool(index.unique),
        method=str(method).lower(),
        keys=tuple(e.name for e in index.expressions if isinstance(e, Column)),
        include=(),
        predicate=None,
    )


def partition_by(table: Table) -> str | None:
    value = pg_options(table).get("partition_by")
    return str(value) if value else None


def type_sql(column: Column, dialect: Dialect) -> str:
    return column.type.compile(dialect=dialect)


def serial_default(table: Table, column: Column) -> str | None:
    """SERIAL columns (an integer primary key with no default) get a sequence default."""
    if (
        table.autoincrement_column is column
        and column.server_default is None
        and column.identity is None
        and column.default is None
    ):
        return f"nextval('{table.name}_{column.name}_seq'::regclass)"
    return None
