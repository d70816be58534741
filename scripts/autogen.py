"""What autogenerate and ``alembic check`` compare, and what they leave to the migrations."""

from __future__ import annotations

from typing import Any

import alembic_postgresql_enum  # noqa: F401  (registers enum-value comparison and ALTER TYPE ops)
from sqlalchemy import text
from sqlalchemy.engine import Connection

from models import metadata
from scripts import comparators
from scripts.generate import number_revision
from scripts.ownership import ignored_tables

# Alembic's default comparators, its opt-in CHECK-constraint comparator (added and removed
# CHECKs by name; Alembic 1.18+ plugin system, see "autogenerate_check_constraints" in
# Alembic's docs) and ours for CHECKs and indexes whose meaning changed (scripts/comparators.py).
# Enum values come from alembic-postgresql-enum, imported above.
AUTOGENERATE_PLUGINS = (
    "alembic.autogenerate.*",
    "alembic.ext.checkconstraint_byname",
    comparators.PLUGIN_NAME,
)

IGNORED_TABLES = ignored_tables(metadata)


class SchemaFilter:
    """``include_name`` for Alembic: partitions, runtime tables and unknown schemas are skipped.

    Partitions are created by revisions and the partition manager, not modelled one by one;
    their parent is. Views are never reflected as tables by autogenerate.
    """

    def __init__(self, partition_names: frozenset[str]) -> None:
        self.partition_names = partition_names

    @classmethod
    def for_connection(cls, conn: Connection) -> SchemaFilter:
        names = conn.scalars(
            text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relispartition AND n.nspname = current_schema()"
            )
        ).all()
        return cls(frozenset(names))

    def include_name(self, name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if type_ == "schema":
            return name is None
        if type_ == "table":
            return name not in self.partition_names and name not in IGNORED_TABLES
        return True


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and name in IGNORED_TABLES)


def configure_options(conn: Connection) -> dict[str, Any]:
    """The ``context.configure`` options for comparing the models to the database."""
    return {
        "target_metadata": metadata,
        "include_name": SchemaFilter.for_connection(conn).include_name,
        "include_object": include_object,
        "compare_type": True,
        "compare_server_default": True,
        "autogenerate_plugins": list(AUTOGENERATE_PLUGINS),
        "process_revision_directives": number_revision,
    }
