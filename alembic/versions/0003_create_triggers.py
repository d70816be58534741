"""Integrity triggers.

updated_at maintenance, e-mail normalisation, append-only attempts, attempts only on
active items, no cycles in the skill hierarchy.

CREATE TRIGGER takes SHARE ROW EXCLUSIVE on each table for a moment (metadata only).

Revision ID: 0003
Revises: 0002
"""

from scripts.sqlfiles import execute_sql_file

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_sql_file(__file__, "upgrade")


def downgrade() -> None:
    execute_sql_file(__file__, "downgrade")
