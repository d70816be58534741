"""The shapes both sides of the comparison are read into: the live catalog and the models
(after the server normalised them) become the same dataclasses, compared field by field."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ColumnState:
    name: str
    type: str  # format_type()
    nullable: bool
    default: str | None  # pg_get_expr(adbin), or None
    identity: str  # '' | 'always' | 'by default'
    generated: str | None = None  # the generation expression of a stored generated column
    collation: str | None = None  # only when not the type's default collation
    comment: str | None = None


@dataclass(frozen=True)
class ForeignKeyState:
    columns: tuple[str, ...]
    target: str
    target_columns: tuple[str, ...]
    on_delete: str
    on_update: str
    deferrable: str = ""  # '' | 'DEFERRABLE INITIALLY IMMEDIATE' | 'DEFERRABLE INITIALLY DEFERRED'
    validated: bool = True  # False: added NOT VALID, existing rows never checked

    def describe(self) -> str:
        text_ = (
            f"({', '.join(self.columns)}) REFERENCES {self.target} ({', '.join(self.target_columns)})"
            f" ON DELETE {self.on_delete} ON UPDATE {self.on_update}"
        )
        if self.deferrable:
            text_ += f" {self.deferrable}"
        if not self.validated:
            text_ += " NOT VALID"
        return text_


@dataclass(frozen=True)
class UniqueState:
    columns: tuple[str, ...]
    deferrable: str = ""
    nulls_not_distinct: bool = False

    def describe(self) -> str:
        text_ = "UNIQUE" + (" NULLS NOT DISTINCT" if self.nulls_not_distinct else "")
        text_ += f" ({', '.join(self.columns)})"
        return text_ + (f" {self.deferrable}" if self.deferrable else "")


@dataclass(frozen=True)
class IndexState:
    unique: bool
    method: str
    keys: tuple[str, ...]  # a column or expression, with COLLATE / opclass / DESC / NULLS when not default
    include: tuple[str, ...]
    predicate: str | None
    nulls_not_distinct: bool = False
    options: tuple[str, ...] = ()  # storage parameters, e.g. ('fillfactor=70',)

    def describe(self) -> str:
        text_ = f"{'UNIQUE ' if self.unique else ''}USING {self.method} ({', '.join(self.keys)})"
        if self.include:
            text_ += f" INCLUDE ({', '.join(self.include)})"
        if self.nulls_not_distinct:
            text_ += " NULLS NOT DISTINCT"
        if self.options:
            text_ += f" WITH ({', '.join(self.options)})"
        if self.predicate:
            text_ += f" WHERE {self.predicate}"
        return text_


@dataclass
class TableState:
    name: str
    columns: dict[str, ColumnState] = field(default_factory=dict)
    primary_key: tuple[str, tuple[str, ...]] | None = None  # (name, columns)
    foreign_keys: dict[str, ForeignKeyState] = field(default_factory=dict)
    uniques: dict[str, UniqueState] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)  # name -> pg_get_constraintdef
    indexes: dict[str, IndexState] = field(default_factory=dict)  # not backing a constraint
    partition_key: str | None = None  # pg_get_partkeydef, e.g. 'RANGE (attempted_at)'
    partitions: dict[str, str] = field(default_factory=dict)  # name -> bound ('DEFAULT', 'FOR VALUES ...')
    persistence: str = ""  # '' (logged) | 'UNLOGGED'
    options: tuple[str, ...] = ()  # storage parameters (reloptions)
    comment: str | None = None


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
    security_definer: bool = False
    config: tuple[str, ...] = ()  # proconfig: SET search_path = ... and the like
    volatility: str = "VOLATILE"

    def attributes(self) -> str:
        parts = [self.volatility, "SECURITY DEFINER" if self.security_definer else "SECURITY INVOKER"]
        parts += [f"SET {c}" for c in self.config]
        return " ".join(parts)


@dataclass(frozen=True)
class PolicyState:
    table: str
    name: str
    definition: str  # AS PERMISSIVE FOR ALL TO ... USING (...) WITH CHECK (...)


@dataclass(frozen=True)
class PartitionIndexState:
    """A partitioned (or any) index the server marks INVALID, and the partitions lacking a copy."""

    table: str
    index: str
    partitions_missing: tuple[str, ...]
    unattached: tuple[str, ...]  # indexes on those partitions not attached to any parent index


@dataclass
class SecurityState:
    """What privileges, owners and row-level security look like, for the non-default objects only."""

    owner: str = ""  # the role that owns alembic_version: the migrating role
    privileges: dict[str, tuple[str, ...]] = field(default_factory=dict)  # object -> 'GRANTEE:PRIV'
    owners: dict[str, str] = field(default_factory=dict)  # object -> owner, where not the migrating role
    row_security: dict[str, str] = field(default_factory=dict)  # table -> 'ENABLED' | 'FORCED'
    policies: dict[str, PolicyState] = field(default_factory=dict)  # 'table.policy' -> policy


@dataclass
class CatalogState:
    tables: dict[str, TableState] = field(default_factory=dict)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    triggers: dict[str, TriggerState] = field(default_factory=dict)  # 'table.name' -> trigger
    disabled_clones: dict[str, str] = field(default_factory=dict)  # 'partition.trigger' -> parent table
    functions: dict[str, FunctionState] = field(default_factory=dict)
    views: dict[str, str] = field(default_factory=dict)  # name -> pg_get_viewdef
    extensions: dict[str, str] = field(default_factory=dict)  # name -> schema
    schemas: dict[str, tuple[str, ...]] = field(default_factory=dict)  # other schema -> its relations
    invalid_indexes: dict[str, PartitionIndexState] = field(default_factory=dict)  # 'table.index'
    security: SecurityState = field(default_factory=SecurityState)
