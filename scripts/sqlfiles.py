"""Kept so revisions written before the layout change keep importing it: they must never break."""

from scripts.migrations.sqlfiles import execute_sql_file

__all__ = ["execute_sql_file"]
