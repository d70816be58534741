"""Runtime settings of a migration run: defaults, environment variables, ``-x`` options."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from scripts.db.durations import duration
from scripts.errors import ConfigError

DEFAULT_LOCK_TIMEOUT = "5s"  # an ALTER waiting longer than this is queueing traffic behind it
DEFAULT_STATEMENT_TIMEOUT = "30min"
DEFAULT_MIGRATION_LOCK_WAIT_S = 300.0

# setting -> (environment variable, alembic -x key)
SOURCES = {
    "lock_timeout": ("ALP_DB_LOCK_TIMEOUT", "lock_timeout"),
    "statement_timeout": ("ALP_DB_STATEMENT_TIMEOUT", "statement_timeout"),
    "migration_lock_wait": ("ALP_DB_MIGRATION_LOCK_WAIT", "migration_lock_wait"),
}


@dataclass(frozen=True)
class RuntimeSettings:
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT
    statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT
    migration_lock_wait: float = DEFAULT_MIGRATION_LOCK_WAIT_S

    @property
    def session_settings(self) -> dict[str, str]:
        return {"lock_timeout": self.lock_timeout, "statement_timeout": self.statement_timeout}

    @classmethod
    def resolve(
        cls, overrides: Mapping[str, object] | None = None, x_args: Mapping[str, str] | None = None
    ) -> RuntimeSettings:
        """Option (``overrides``) > ``-x key=value`` > environment variable > default."""
        chosen: dict[str, str] = {}
        for setting, (env_name, x_key) in SOURCES.items():
            for source in (
                (overrides or {}).get(setting),
                (x_args or {}).get(x_key),
                os.environ.get(env_name),
            ):
                if source is not None and str(source) != "":
                    chosen[setting] = str(source)
                    break
        wait = chosen.get("migration_lock_wait", str(DEFAULT_MIGRATION_LOCK_WAIT_S))
        try:
            wait_s = float(wait)
        except ValueError:
            raise ConfigError(
                f"migration lock wait {wait!r} is not a number of seconds", "use e.g. 300"
            ) from None
        return cls(
            lock_timeout=duration("lock_timeout", chosen.get("lock_timeout", DEFAULT_LOCK_TIMEOUT)),
            statement_timeout=duration(
                "statement_timeout", chosen.get("statement_timeout", DEFAULT_STATEMENT_TIMEOUT)
            ),
            migration_lock_wait=wait_s,
        )
