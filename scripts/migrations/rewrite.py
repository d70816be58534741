"""Autogenerate's operations rewritten into the forms that are safe on tables in use.

Plugged in as ``process_revision_directives`` (Alembic cookbook, "Customizing Revision
Generation"; ``alembic.autogenerate.rewriter.Rewriter``), after the revision is numbered. What
Alembic would write, and what is written instead, each with a comment in the revision saying why:

- an index on an existing table: ``CREATE INDEX CONCURRENTLY`` in an autocommit block (and
  ``DROP INDEX CONCURRENTLY``); on a partitioned table the project's partitioned-index helper;
  an index on a table created or dropped by the same step stays plain;
- a foreign key on an existing table: added ``NOT VALID``, validated in a later transaction;
- ``NOT NULL`` on an existing column: ``CHECK (col IS NOT NULL) NOT VALID``, ``VALIDATE``,
  ``SET NOT NULL`` (PostgreSQL 12+ skips the scan), the CHECK dropped;
- a new enum value: ``ADD VALUE ... AFTER`` its predecessor in the model, in an autocommit
  block; removing values (the downgrade) re-creates the type around dependent views
  (scripts.migrations.enum_values);
- a column type change that rewrites the table, or a dropped column: kept, with a warning in
  the revision's docstring saying what it locks and rewrites.

A step (upgrade or downgrade) is laid out in phases, so that a lock taken by a quick catalog
change is never held during a long scan: autocommit enum additions; the transactional body;
concurrent index builds (autocommit); validations (their own transaction); ``SET NOT NULL``.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from alembic.autogenerate.rewriter import Rewriter
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from alembic_postgresql_enum.operations.add_enum_values import AddEnumValuesOp
from alembic_postgresql_enum.operations.sync_enum_values import SyncEnumValuesOp
from sqlalchemy import Column, String, Text, text

from scripts.db.sqltext import escape_colons, quote_literal
from scripts.migrations.lock_notes import RUNBOOK, lock_note
from scripts.migrations.rendered_ops import (
    WHY_ADD_VALUE,
    WHY_CHECK_NOT_NULL,
    WHY_CHECK_NOT_VALID,
    WHY_CONCURRENT,
    WHY_DROP_CONCURRENT,
    WHY_FK_NOT_VALID,
    WHY_PARTITIONED,
    WHY_PARTITIONED_DROP,
    WHY_PLAIN_INDEX,
    WHY_SET_NOT_NULL,
    WHY_SPLIT,
    WHY_VALIDATE,
    AutocommitBlock,
    Comment,
    NotValid,
    PartitionedIndexOp,
    RemoveEnumValuesOp,
)

# Template attributes (config.attributes) read by alembic/script.py.mako.
WARNINGS_ATTRIBUTE = "revision_warnings"
WAIVERS_ATTRIBUTE = "revision_squawk_ignore"
LOCKS_ATTRIBUTE = "revision_locks"
MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1
# Docstring warnings fit ruff's line length (110).
WARNING_WIDTH = 100


@dataclass
class StepPlan:
    """What one step (upgrade or downgrade) becomes, phase by phase."""

    enum_additions: list[ops.MigrateOperation] = field(default_factory=list)
    body: list[ops.MigrateOperation] = field(default_factory=list)
    concurrent: list[ops.MigrateOperation] = field(default_factory=list)
    partitioned: list[ops.MigrateOperation] = field(default_factory=list)  # has its own autocommit block
    validations: list[ops.MigrateOperation] = field(default_factory=list)
    set_not_null: list[ops.MigrateOperation] = field(default_factory=list)
    added: set[str] = field(default_factory=set)  # constraint names the step adds

    def ops(self) -> list[ops.MigrateOperation]:
        laid_out: list[ops.MigrateOperation] = []
        if self.enum_additions:
            laid_out.append(AutocommitBlock(self.enum_additions, WHY_ADD_VALUE))
        laid_out += self.body
        if self.concurrent:
            laid_out.append(AutocommitBlock(self.concurrent))
        laid_out += self.partitioned
        committed = bool(self.concurrent or self.partitioned)  # an autocommit block ended the body's
        if not committed and (self.validations or self.set_not_null):
            laid_out.append(AutocommitBlock([], WHY_SPLIT))
        if self.validations:
            laid_out += [Comment(WHY_VALIDATE), *self.validations]
            if self.set_not_null:
                laid_out.append(AutocommitBlock([], WHY_SPLIT))
        if self.set_not_null:
            laid_out += [Comment(WHY_SET_NOT_NULL), *self.set_not_null]
        return laid_out


# -- the rewriting --------------------------------------------------------------------------


@dataclass
class Rewrite:
    """The state of one autogenerate run: what the database holds, what the revision warns of."""

    context: MigrationContext
    partitioned: frozenset[str]
    warnings: list[str] = field(default_factory=list)
    waivers: set[str] = field(default_factory=set)
    locks: list[str] = field(default_factory=list)  # the upgrade's, for the docstring

    @property
    def prep(self) -> Any:
        return self.context.dialect.identifier_preparer

    def quote_table(self, table: str, schema: str | None) -> str:
        return (self.prep.quote_schema(schema) + "." if schema else "") + self.prep.quote(table)

    def plan(self, container: ops.OpContainer, *, upgrade: bool) -> list[ops.MigrateOperation]:
        step = StepPlan()
        for op in container.ops:
            for inner in getattr(op, "ops", [op]):
                name = getattr(inner, "constraint_name", None)
                if isinstance(inner, ops.AddConstraintOp) and name:
                    step.added.add(str(name))
        created = {o.table_name for o in container.ops if isinstance(o, (ops.CreateTableOp, ops.DropTableOp))}
        for op in container.ops:
            if isinstance(op, ops.ModifyTableOps):
                kept: list[ops.MigrateOperation] = []
                for inner in op.ops:
                    self.place(inner, step, kept, created, upgrade=upgrade)
                if kept:
                    step.body.append(ops.ModifyTableOps(op.table_name, kept, schema=op.schema))
            else:
                self.place(op, step, step.body, created, upgrade=upgrade)
        return step.ops()

    def place(
        self,
        op: ops.MigrateOperation,
        step: StepPlan,
        body: list[ops.MigrateOperation],
        created: set[str],
        *,
        upgrade: bool,
    ) -> None:
        table = getattr(op, "table_name", None)
        new_table = table in created
        if upgrade:
            rewriting = isinstance(op, ops.AlterColumnOp) and (
                op.modify_type is not None and rewrites(op.existing_type, op.modify_type)
            )
            note = lock_note(
                op, new_table=new_table, partitioned=table in self.partitioned, rewrites=rewriting
            )
            if note:
                self.locks += textwrap.wrap(note, WARNING_WIDTH, initial_indent="- ", subsequent_indent="  ")
        if isinstance(op, (ops.CreateIndexOp, ops.DropIndexOp)) and not new_table:
            self.place_index(op, step, body)
        elif isinstance(op, (ops.CreateIndexOp, ops.DropIndexOp)):
            body += [Comment(WHY_PLAIN_INDEX, table=str(table)), op]
        elif isinstance(op, ops.CreateCheckConstraintOp) and not new_table:
            body += [Comment(WHY_CHECK_NOT_VALID, table=str(table)), NotValid(op)]
            name = str(op.constraint_name)
            step.validations.append(self.validate(str(table), name, op.schema))
        elif isinstance(op, ops.CreateForeignKeyOp) and not new_table:
            body += [Comment(WHY_FK_NOT_VALID, table=op.source_table), NotValid(op)]
            schema = op.kw.get("source_schema")
            step.validations.append(self.validate(op.source_table, str(op.constraint_name), schema))
        elif isinstance(op, ops.AlterColumnOp):
            self.place_alter(op, step, body, upgrade=upgrade)
        elif isinstance(op, AddEnumValuesOp):
            step.enum_additions += self.add_values(op)
        elif isinstance(op, SyncEnumValuesOp) and removes_only(op.old_values, op.new_values):
            schema = None if op.schema == self.context.dialect.default_schema_name else op.schema
            body.append(RemoveEnumValuesOp(op.name, list(op.new_values), schema))
            self.warn(
                upgrade,
                f"removes {', '.join(v for v in op.old_values if v not in op.new_values)} from {op.name}:"
                f" rewrites every table with a {op.name} column under ACCESS EXCLUSIVE",
            )
        elif isinstance(op, ops.DropConstraintOp) and upgrade and not new_table:
            body.append(op)
            if str(op.constraint_name) not in step.added:  # else re-added, redefined
                self.warn(
                    upgrade,
                    f"drops constraint {op.constraint_name} from {op.table_name}: the database stops"
                    " enforcing it (the models no longer declare it)",
                )
            self.waivers.add("ban-drop-constraint")
        elif isinstance(op, ops.DropColumnOp):
            body.append(op)
            self.warn(
                upgrade,
                f"drops {op.table_name}.{op.column_name} and the data in it: ACCESS EXCLUSIVE on"
                f" {op.table_name}, brief (the column is only marked dropped, no rewrite)"
                + ("; deploy the code that no longer reads it first" if upgrade else ""),
            )
            if upgrade:
                self.waivers.add("ban-drop-column")
        else:
            body.append(op)

    def place_index(
        self, op: ops.CreateIndexOp | ops.DropIndexOp, step: StepPlan, body: list[ops.MigrateOperation]
    ) -> None:
        table = str(op.table_name)
        if table in self.partitioned:
            if isinstance(op, ops.CreateIndexOp):
                columns = index_columns(op)
                if columns is not None:
                    where = op.kw.get("postgresql_where")
                    step.partitioned.append(Comment(WHY_PARTITIONED, table=table))
                    predicate = str(where) if where is not None else None
                    step.partitioned.append(PartitionedIndexOp(op, columns, predicate))
                    return
            body += [Comment(WHY_PARTITIONED_DROP, table=table), op]
            return
        op.kw["postgresql_concurrently"] = True
        if isinstance(op, ops.CreateIndexOp):
            leftover = ops.DropIndexOp(str(op.index_name), table_name=table, schema=op.schema, if_exists=True)
            leftover.kw["postgresql_concurrently"] = True
            op.if_not_exists = True
            step.concurrent += [Comment(WHY_CONCURRENT, table=table), leftover, op]
        else:
            op.if_exists = True
            step.concurrent += [Comment(WHY_DROP_CONCURRENT, table=table), op]

    def place_alter(
        self, op: ops.AlterColumnOp, step: StepPlan, body: list[ops.MigrateOperation], *, upgrade: bool
    ) -> None:
        table, column = op.table_name, str(op.column_name)
        if op.modify_type is not None and rewrites(op.existing_type, op.modify_type):
            self.warn(
                upgrade,
                f"changes {op.table_name}.{op.column_name} to {op.modify_type!r}: rewrites {op.table_name}"
                " and its indexes under ACCESS EXCLUSIVE (no reads or writes) for as long as that takes",
            )
            if upgrade:
                self.waivers.add("changing-column-type")
        elif op.modify_type is not None:
            body.append(Comment("# {t}.{c}: a binary-coercible widening, no rewrite", t=table, c=column))
            if upgrade:
                self.waivers.add("changing-column-type")
        if op.modify_nullable is False:
            op.modify_nullable = None
            check = not_null_check_name(table, column)
            body.append(Comment(WHY_CHECK_NOT_NULL, table=table, column=column))
            condition = f"{self.prep.quote(column)} IS NOT NULL"
            body.append(NotValid(ops.CreateCheckConstraintOp(check, table, condition, schema=op.schema)))
            step.validations.append(self.validate(table, check, op.schema))
            step.set_not_null.append(
                ops.AlterColumnOp(
                    table, column, schema=op.schema, existing_type=op.existing_type, modify_nullable=False
                )
            )
            step.set_not_null.append(self.drop_check(table, check, op.schema))
        if has_changes(op):
            body.append(op)

    def validate(self, table: str, constraint: str, schema: str | None) -> ops.ExecuteSQLOp:
        quoted = self.quote_table(table, schema)
        sql = f"ALTER TABLE {quoted} VALIDATE CONSTRAINT {self.prep.quote(constraint)}"
        return ops.ExecuteSQLOp(escape_colons(sql))

    def drop_check(self, table: str, constraint: str, schema: str | None) -> ops.ExecuteSQLOp:
        # The CHECK was added by this very revision as scaffolding: the waiver says so to squawk,
        # next to the one statement (its ban-drop-constraint guards against dropping a guarantee).
        sql = (
            "-- squawk-ignore ban-drop-constraint\n"
            f"ALTER TABLE {self.quote_table(table, schema)} DROP CONSTRAINT {self.prep.quote(constraint)}"
        )
        return ops.ExecuteSQLOp(escape_colons(sql))

    def add_values(self, op: AddEnumValuesOp) -> list[ops.MigrateOperation]:
        schema = None if op.schema == self.context.dialect.default_schema_name else op.schema
        type_name = self.quote_table(op.name, schema)
        added: list[ops.MigrateOperation] = []
        for position, value in enumerate(op.new_values):
            if value in op.old_values:
                continue
            if position > 0:
                where = f"AFTER {quote_literal(op.new_values[position - 1])}"
            else:
                where = f"BEFORE {quote_literal(op.new_values[1])}"
            sql = f"ALTER TYPE {type_name} ADD VALUE IF NOT EXISTS {quote_literal(value)} {where}"
            added.append(ops.ExecuteSQLOp(escape_colons(sql)))
        return added

    def warn(self, upgrade: bool, message: str) -> None:
        self.warnings += textwrap.wrap(
            f"{'upgrade' if upgrade else 'downgrade'} {message}.",
            WARNING_WIDTH,
            initial_indent="- ",
            subsequent_indent="  ",
        )


def removes_only(old: list[str], new: list[str]) -> bool:
    """``new`` is ``old`` with values left out, in the same order."""
    return bool(new) and set(new) < set(old) and [v for v in old if v in new] == list(new)


def index_columns(op: ops.CreateIndexOp) -> list[str] | None:
    """Plain column names (what the partitioned-index helper takes), else None."""
    names = []
    for column in op.columns:
        if isinstance(column, str):
            names.append(column)
        elif isinstance(column, Column):
            names.append(column.name)
        else:  # an expression: the helper takes column names only
            return None
    return names


def not_null_check_name(table: str, column: str) -> str:
    name = f"ck_{table}_{column}_not_null"
    if len(name.encode()) <= MAX_IDENTIFIER_BYTES:
        return name
    return f"ck_{column}_not_null"[:MAX_IDENTIFIER_BYTES]


def rewrites(existing: Any, new: Any) -> bool:
    """Whether ALTER COLUMN ... TYPE rewrites the table: all but a binary-coercible widening.

    varchar(n) -> varchar(m >= n) or text, and text -> varchar without limit, are binary
    coercible and need no rewrite (PostgreSQL "ALTER TABLE", Notes); anything else is assumed to.
    """
    if isinstance(existing, String) and isinstance(new, String):
        if isinstance(new, Text) or new.length is None:
            return False
        return existing.length is None or isinstance(existing, Text) or new.length < existing.length
    return True


def has_changes(op: ops.AlterColumnOp) -> bool:
    return (
        op.modify_type is not None
        or op.modify_nullable is not None
        or op.modify_server_default is not False
        or op.modify_comment is not False
        or op.modify_name is not None
    )


def partitioned_tables(context: MigrationContext) -> frozenset[str]:
    conn = context.connection
    if conn is None:
        return frozenset()
    names = conn.scalars(
        text(
            "SELECT c.relname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
            " WHERE c.relnamespace = to_regnamespace(current_schema())::oid"
        )
    ).all()
    return frozenset(names)


def rewrite_revision(context: MigrationContext, revision: Any, directives: list[Any]) -> None:
    """``process_revision_directives``: each step laid out in safe phases (module docstring)."""
    state = Rewrite(context, partitioned_tables(context))
    writer = Rewriter()

    @writer.rewrites(ops.MigrationScript)
    def _script(ctx: MigrationContext, rev: Any, script: ops.MigrationScript) -> ops.MigrationScript:
        for up, down in zip(script.upgrade_ops_list, script.downgrade_ops_list, strict=True):
            up.ops = state.plan(up, upgrade=True)
            down.ops = state.plan(down, upgrade=False)
        return script

    writer(context, revision, directives)
    if context.config is not None:
        context.config.attributes[WARNINGS_ATTRIBUTE] = list(state.warnings)
        context.config.attributes[WAIVERS_ATTRIBUTE] = sorted(state.waivers)
        context.config.attributes[LOCKS_ATTRIBUTE] = (
            [*state.locks, "", *textwrap.wrap(RUNBOOK, WARNING_WIDTH)] if state.locks else []
        )
