"""Record what revisions own: ``alp-db record-owned > scripts/schema_diff/owned_objects.py``.

Run it against a database freshly migrated to head whenever a revision adds or changes a
trigger, function, view or default partition, then ``ruff format`` the file and review the
diff.
"""

from __future__ import annotations

from sqlalchemy.engine import URL

from scripts.db.schema import target_schema
from scripts.db.target import session
from scripts.migrations.api import versions_dir
from scripts.schema_diff.catalog import open_schema
from scripts.schema_diff.owned import capture, render_module


def record_owned(database_url: str | URL | None = None, schema: str | None = None) -> str:
    """The source of owned_objects.py for a database at head (its target schema)."""
    with session(database_url) as conn:
        return render_module(capture(conn, versions_dir(), open_schema(conn, target_schema(schema))))
