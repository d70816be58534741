"""An autogenerate plugin that compares CHECK constraints and indexes by meaning.

Alembic compares a CHECK constraint by name only (``alembic.ext.checkconstraint_byname``
skips one whose expression it cannot compare) and an index by its columns, so a CHECK whose
bound changed, or a partial index whose predicate changed, yields an empty revision. This
plugin asks the validator's normaliser (scripts/schema_diff/normalise.py) how the server would
store the models' expressions and, for a CHECK or index present on both sides under the
same name but with another meaning, emits a drop and a re-create. Objects Alembic itself
already adds or drops are left to it.

Registered with Alembic's plugin system (1.18+, "Autogenerate plugins" in Alembic's docs)
under ``PLUGIN_NAME``; autogen.py enables it.
"""

from __future__ import annotations

import sys
from typing import Any

from alembic.operations import ops
from alembic.runtime.plugins import Plugin
from alembic.util import DispatchPriority, PriorityDispatchResult
from sqlalchemy import CheckConstraint, Column, Index, MetaData, Table, text
from sqlalchemy.sql.elements import conv

from scripts.schema_diff import model as m
from scripts.schema_diff.catalog import IndexState, current_namespace, read_catalog
from scripts.schema_diff.normalise import expected_state, scratch

PLUGIN_NAME = "alp_db.compare_by_meaning"
CHECK_PREFIX = "CHECK "
NOT_VALID_SUFFIX = " NOT VALID"
DEFAULT_INDEX_METHOD = "btree"


def touched_names(upgrade_ops: ops.UpgradeOps) -> set[str]:
    """Constraints and indexes the other comparators already add or drop."""
    names: set[str] = set()
    for table_ops in upgrade_ops.ops:
        for op in getattr(table_ops, "ops", [table_ops]):
            for attr in ("constraint_name", "index_name"):
                name = getattr(op, attr, None)
                if name:
                    names.add(str(name))
    return names


def live_check(table: str, name: str, definition: str) -> CheckConstraint:
    """The database's CHECK as a constraint object, so the downgrade can re-create it."""
    body = definition.removeprefix(CHECK_PREFIX).removesuffix(NOT_VALID_SUFFIX)
    # conv(): the name is final; the naming convention must not wrap it again (ck_items_ck_items_...).
    return CheckConstraint(text(body), name=conv(name), table=Table(table, MetaData()))


def live_index(table: str, columns: list[str], name: str, state: IndexState) -> Index:
    """The database's index as an Index object, so the downgrade can re-create it."""
    stub = Table(table, MetaData(), *(Column(c) for c in columns))
    elements: list[Any] = [stub.c[k] if k in stub.c else text(k) for k in state.keys]
    options: dict[str, Any] = {}
    if state.method != DEFAULT_INDEX_METHOD:
        options["postgresql_using"] = state.method
    if state.predicate:
        options["postgresql_where"] = text(state.predicate)
    if state.include:
        options["postgresql_include"] = list(state.include)
    return Index(conv(name), *elements, unique=state.unique, _table=stub, **options)


def compare_by_meaning(autogen_context: Any, upgrade_ops: ops.UpgradeOps, schemas: set[str | None]) -> Any:
    metadata = autogen_context.metadata
    conn = autogen_context.connection
    if not isinstance(metadata, MetaData) or conn is None or None not in schemas:
        return PriorityDispatchResult.CONTINUE
    models = m.read_models(metadata)
    live = read_catalog(conn, current_namespace(conn), with_owned=False)
    with scratch(conn):
        expected = expected_state(conn, models)
    done = touched_names(upgrade_ops)
    for name, want in expected.tables.items():
        have = live.tables.get(name)
        if have is None or not autogen_context.run_name_filters(name, "table", {"schema_name": None}):
            continue
        table = models.tables[name]
        found: list[ops.MigrateOperation] = []
        model_checks = {str(c.name): c for c in m.checks(table)}
        for ck_name, definition in want.checks.items():
            if ck_name in have.checks and have.checks[ck_name] != definition and ck_name not in done:
                found.append(
                    ops.DropConstraintOp.from_constraint(live_check(name, ck_name, have.checks[ck_name]))
                )
                found.append(ops.AddConstraintOp.from_constraint(model_checks[ck_name]))
        model_indexes = {str(i.name): i for i in table.indexes}
        for ix_name, state in want.indexes.items():
            current = have.indexes.get(ix_name)
            if current is not None and current != state and ix_name not in done:
                found.append(
                    ops.DropIndexOp.from_index(live_index(name, list(have.columns), ix_name, current))
                )
                found.append(ops.CreateIndexOp.from_index(model_indexes[ix_name]))
        if found:
            upgrade_ops.ops.append(ops.ModifyTableOps(name, found))
    return PriorityDispatchResult.CONTINUE


def setup(plugin: Plugin) -> None:
    # LAST: Alembic's own comparators have run, so their ops can be left alone.
    plugin.add_autogenerate_comparator(
        compare_by_meaning, "schema", "meaning", priority=DispatchPriority.LAST
    )


Plugin.setup_plugin_from_module(sys.modules[__name__], PLUGIN_NAME)
