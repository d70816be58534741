"""Monitoring and analytics views.

Monitoring: table_sizes, slow_queries, index_usage, connection_stats, system_health —
no pg_stat_statements needed. Analytics: item_statistics, learner_progress, daily_activity.

Views take no lock on their tables at creation beyond a brief ACCESS SHARE.

Revision ID: 0004
Revises: 0003
"""

from scripts.sqlfiles import execute_sql_file

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_sql_file(__file__, "upgrade")


def downgrade() -> None:
    execute_sql_file(__file__, "downgrade")
