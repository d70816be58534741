"""Initial schema: enum types, tables, yearly attempts partitions and a DEFAULT partition.

Runs on an empty database: creates everything, locks nothing anyone else uses.
SQL: 0001_initial_schema.upgrade.sql / .downgrade.sql beside this file.

Revision ID: 0001
Revises: (none)
"""

from scripts.sqlfiles import execute_sql_file

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_sql_file(__file__, "upgrade")


def downgrade() -> None:
    execute_sql_file(__file__, "downgrade")
