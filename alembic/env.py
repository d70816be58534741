"""Alembic environment: pick online or offline and hand off to the alp-db runtime.

The database comes from ``DATABASE_URL`` (or the local development database when unset);
a connection in ``config.attributes["connection"]`` is used as is (Alembic cookbook).
Runtime rules — migration lock, timeouts, one transaction per revision, migration_history —
live in scripts/migrations/runtime.py so that plain ``alembic upgrade`` applies them too.
"""

from logging.config import fileConfig

from alembic import context

from scripts.migrations import runtime

if context.config.config_file_name and context.config.attributes.get("configure_logger", True):
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    runtime.run_offline(context)
else:
    runtime.run_online(context)
