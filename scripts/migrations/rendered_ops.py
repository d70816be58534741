"""The operations the rewriter (scripts/migrations/rewrite.py) puts into revisions, and how
Alembic renders them (``alembic.autogenerate.renderers.dispatch_for``, Alembic cookbook
"Rendering custom operations"), with the comments that say why each is written so."""

from __future__ import annotations

import textwrap

from alembic.autogenerate import renderers
from alembic.autogenerate.api import AutogenContext
from alembic.autogenerate.render import render_op
from alembic.operations import ops

# Comments fit ruff's line length (110) two blocks deep.
COMMENT_WIDTH = 96
PARTITIONED_INDEX_HELPER = "from scripts.partitions import create_partitioned_index_concurrently"
ENUM_HELPER = "from scripts.migrations.enum_values import remove_enum_values"

WHY_CONCURRENT = (
    '# {table} holds rows: build the index CONCURRENTLY so writes go on (PostgreSQL "CREATE INDEX",',
    '# "Building Indexes Concurrently"). It cannot run in a transaction, hence the autocommit block;',
    "# a failed build leaves an INVALID index behind, so a re-run drops any leftover first.",
)
WHY_DROP_CONCURRENT = (
    "# {table} is in use: DROP INDEX CONCURRENTLY waits for queries instead of blocking them",
    '# (PostgreSQL "DROP INDEX"); it cannot run in a transaction, hence the autocommit block.',
)
WHY_PARTITIONED = (
    '# {table} is partitioned: CREATE INDEX CONCURRENTLY cannot run on it (PostgreSQL "CREATE INDEX",',
    "# Notes), so the project's helper builds each partition's index concurrently and attaches it.",
)
WHY_PARTITIONED_DROP = (
    "# {table} is partitioned: a partitioned index cannot be dropped CONCURRENTLY (PostgreSQL",
    '# "DROP INDEX"); this takes ACCESS EXCLUSIVE on {table} and its partitions, briefly.',
)
WHY_PLAIN_INDEX = "# {table} is created (or dropped) by this very step, so holds no rows: a plain index"
WHY_FK_NOT_VALID = (
    "# {table} holds rows: the foreign key is added NOT VALID (a catalog change, no scan) and",
    '# validated below in a transaction of its own (PostgreSQL "ALTER TABLE", Notes).',
)
WHY_CHECK_NOT_VALID = (
    "# {table} holds rows: the CHECK is added NOT VALID (no scan under ACCESS EXCLUSIVE) and",
    '# validated below in a transaction of its own (PostgreSQL "ALTER TABLE", Notes).',
)
WHY_CHECK_NOT_NULL = (
    "# {table}.{column} becomes NOT NULL without an ACCESS EXCLUSIVE scan: a CHECK (... IS NOT NULL)",
    "# NOT VALID now, VALIDATE below (SHARE UPDATE EXCLUSIVE: writes go on), then SET NOT NULL,",
    '# which PostgreSQL 12+ proves from the valid CHECK without scanning ("ALTER TABLE", Notes).',
)
WHY_VALIDATE = (
    "# VALIDATE CONSTRAINT scans the table under SHARE UPDATE EXCLUSIVE, so reads and writes go on;",
    "# the lock taken to add the constraint was released when the transaction above committed.",
)
WHY_SET_NOT_NULL = (
    "# SET NOT NULL is proved by the CHECK validated above: no scan (PostgreSQL 12+); the CHECK",
    "# is scaffolding and goes.",
)
WHY_SPLIT = (
    "# end the transaction here, so that the locks taken above are released before what follows",
    '# (Alembic "autocommit_block": it commits the revision\'s transaction and opens a new one).',
)
WHY_ADD_VALUE = (
    "# ALTER TYPE ... ADD VALUE cannot run in a transaction block before PostgreSQL 12, and a new value",
    '# cannot be used in the transaction that added it (PostgreSQL "ALTER TYPE", Notes): autocommit.',
    "# Placed as in the model's order; IF NOT EXISTS lets a failed revision be run again.",
)
WHY_REMOVE_VALUES = (
    "# PostgreSQL cannot drop an enum value: remove_enum_values re-creates the type and moves the",
    "# columns onto it, re-creating the views, indexes and CHECKs in the way, in this transaction;",
    "# it stops, changing nothing, if a row still holds a removed value.",
)


class Comment(ops.MigrateOperation):
    """Comment lines, re-wrapped to fit the line length inside a ``with`` block."""

    def __init__(self, lines: tuple[str, ...] | str, **values: str) -> None:
        prose = " ".join(
            line.format(**values).removeprefix("#").strip()
            for line in ((lines,) if isinstance(lines, str) else lines)
        )
        self.lines = textwrap.wrap(prose, COMMENT_WIDTH, initial_indent="# ", subsequent_indent="# ")


class AutocommitBlock(ops.MigrateOperation):
    """``with op.get_context().autocommit_block():`` around ``inner`` (or ``pass``)."""

    def __init__(self, inner: list[ops.MigrateOperation], why: tuple[str, ...] = ()) -> None:
        self.inner = inner
        self.why = why


class NotValid(ops.MigrateOperation):
    """A constraint added ``NOT VALID``: Alembic's own rendering plus ``postgresql_not_valid``.

    (Alembic passes the keyword through to SQLAlchemy's PostgreSQL dialect, which appends
    ``NOT VALID``, but its renderer does not write it out.)
    """

    def __init__(self, inner: ops.AddConstraintOp) -> None:
        self.inner = inner


class PartitionedIndexOp(ops.MigrateOperation):
    def __init__(self, index_op: ops.CreateIndexOp, columns: list[str], where: str | None) -> None:
        self.index_op = index_op
        self.columns = columns
        self.where = where


class RemoveEnumValuesOp(ops.MigrateOperation):
    def __init__(self, name: str, keep: list[str], schema: str | None) -> None:
        self.name = name
        self.keep = keep
        self.schema = schema


@renderers.dispatch_for(Comment)
def _render_comment(autogen_context: AutogenContext, op: Comment) -> list[str]:
    return op.lines


@renderers.dispatch_for(AutocommitBlock)
def _render_autocommit(autogen_context: AutogenContext, op: AutocommitBlock) -> list[str]:
    lines = Comment(op.why).lines if op.why else []
    lines.append("with op.get_context().autocommit_block():")
    inner = [line for o in op.inner for line in render_op(autogen_context, o)]
    lines += inner or ["pass"]
    lines.append("")  # ends the block (Mako's PythonPrinter dedents on an empty line)
    return lines


@renderers.dispatch_for(NotValid)
def _render_not_valid(autogen_context: AutogenContext, op: NotValid) -> str:
    [rendered] = render_op(autogen_context, op.inner)
    assert rendered.endswith(")"), rendered
    return rendered[:-1] + ", postgresql_not_valid=True)"


@renderers.dispatch_for(PartitionedIndexOp)
def _render_partitioned_index(autogen_context: AutogenContext, op: PartitionedIndexOp) -> str:
    autogen_context.imports.add(PARTITIONED_INDEX_HELPER)
    index = op.index_op
    args = [repr(index.index_name), repr(op.columns), f"table={index.table_name!r}"]
    if index.unique:
        args.append("unique=True")
    using = index.kw.get("postgresql_using")
    if using:
        args.append(f"using={using!r}")
    if op.where:
        args.append(f"where={op.where!r}")
    return f"create_partitioned_index_concurrently(op, {', '.join(args)})"


@renderers.dispatch_for(RemoveEnumValuesOp)
def _render_remove_values(autogen_context: AutogenContext, op: RemoveEnumValuesOp) -> list[str]:
    autogen_context.imports.add(ENUM_HELPER)
    schema = f", schema={op.schema!r}" if op.schema else ""
    return [*WHY_REMOVE_VALUES, f"remove_enum_values(op, {op.name!r}, {op.keep!r}{schema})"]
