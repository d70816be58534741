"""Alembic environment: hand off to the alp-db runtime.

The database comes from ``DATABASE_URL`` (or the local development database when unset);
a Connection or an Engine in ``config.attributes["connection"]`` is used instead (Alembic
cookbook, "Sharing a Connection across one or more programmatic migration commands").
Runtime rules — migration lock, timeouts, lock retries, one transaction per revision,
migration_history — live in scripts/migrations/runtime.py so that plain ``alembic upgrade``
applies them too; errors there reach plain ``alembic`` as ``FAILED: <one line>``.
"""

from logging.config import fileConfig

from alembic import context

from scripts.migrations import runtime

if context.config.config_file_name and context.config.attributes.get("configure_logger", True):
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)

runtime.run(context)
