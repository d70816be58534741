"""Indexes for the platform's query paths.

Recent attempts per learner and per item, active items by difficulty, unique
case-insensitive e-mail, BRIN on attempt time, foreign-key lookups.

Plain CREATE INDEX (SHARE lock, blocks writes) is right only because the tables are empty
when this first runs; later index revisions use CONCURRENTLY in an autocommit block.

Revision ID: 0002
Revises: 0001
"""

from scripts.sqlfiles import execute_sql_file

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_sql_file(__file__, "upgrade")


def downgrade() -> None:
    execute_sql_file(__file__, "downgrade")
