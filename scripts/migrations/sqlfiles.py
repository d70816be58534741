"""Run a revision's raw SQL file through ``op.execute`` (online and offline alike)."""

from __future__ import annotations

from pathlib import Path

from alembic import op
from sqlalchemy import text


def sql_path(revision_file: str, direction: str) -> Path:
    """``0001_initial_schema.py`` + ``upgrade`` -> ``0001_initial_schema.upgrade.sql``."""
    return Path(revision_file).with_suffix(f".{direction}.sql")


def execute_sql_file(revision_file: str, direction: str) -> None:
    """Execute the whole file as one batch; the revision's transaction makes it atomic.

    ``text()`` would read ``:name`` as a bind parameter, so colons are escaped for it.
    """
    # the trailing semicolon is Alembic's to add (offline mode terminates every statement)
    sql = sql_path(revision_file, direction).read_text().rstrip().rstrip(";")
    op.execute(text(sql.replace(":", r"\:")))
