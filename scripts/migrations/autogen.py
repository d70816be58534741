"""What autogenerate and ``alembic check`` compare, and what they leave to the migrations."""

from __future__ import annotations

from typing import Any

import alembic_postgresql_enum  # noqa: F401  (registers enum-value comparison and ALTER TYPE ops)
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from scripts.migrations import compare_by_meaning as comparators
from scripts.migrations.ownership import ignored_tables
from scripts.migrations.revisions import number_revision
from scripts.migrations.rewrite import rewrite_revision

# Alembic's default comparators, its opt-in CHECK-constraint comparator (added and removed
# CHECKs by name; Alembic 1.18+ plugin system, see "autogenerate_check_constraints" in
# Alembic's docs) and ours for CHECKs and indexes whose meaning changed (compare_by_meaning.py).
# Enum values come from alembic-postgresql-enum, imported above.
AUTOGENERATE_PLUGINS = (
    "alembic.autogenerate.*",
    "alembic.ext.checkconstraint_byname",
    comparators.PLUGIN_NAME,
)


class SchemaFilter:
    """``include_name`` for Alembic: partitions, runtime tables and unknown schemas are skipped.

    Partitions are created by revisions and the partition manager, not modelled one by one;
    their parent is. Views are never reflected as tables by autogenerate.
    """

    def __init__(self, partition_names: frozenset[str], ignored: frozenset[str]) -> None:
        self.partition_names = partition_names
        self.ignored = ignored

    @classmethod
    def for_connection(cls, conn: Connection, metadata: MetaData) -> SchemaFilter:
        names = conn.scalars(
            text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relispartition AND n.nspname = current_schema()"
            )
        ).all()
        return cls(frozenset(names), frozenset(ignored_tables(metadata)))

    def include_name(self, name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if type_ == "schema":
            return name is None
        if type_ == "table":
            return name not in self.partition_names and name not in self.ignored
        return True

    def include_object(
        self, obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        return not (type_ == "table" and name in self.ignored)


def configure_options(conn: Connection, metadata: MetaData | None = None) -> dict[str, Any]:
    """The ``context.configure`` options for comparing ``metadata`` (the models by default)
    to the database."""
    if metadata is None:
        from models import metadata as models

        metadata = models
    schema_filter = SchemaFilter.for_connection(conn, metadata)
    return {
        "target_metadata": metadata,
        "include_name": schema_filter.include_name,
        "include_object": schema_filter.include_object,
        "compare_type": True,
        "compare_server_default": True,
        "autogenerate_plugins": list(AUTOGENERATE_PLUGINS),
        "process_revision_directives": process_revision_directives,
    }


def process_revision_directives(context: MigrationContext, revision: Any, directives: list[Any]) -> None:
    """Number and name the revision, then rewrite its operations into production-safe forms."""
    number_revision(context, revision, directives)
    rewrite_revision(context, revision, directives)
