"""Runtime settings of a migration run: defaults, environment variables, ``-x`` options."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from scripts.db.durations import duration
from scripts.errors import ConfigError

# The wait of a statement that is not retried: offline scripts, work in autocommit blocks,
# a connection handed in by the caller, or lock retries turned off (lock_retry_budget 0).
DEFAULT_LOCK_TIMEOUT = "5s"
DEFAULT_STATEMENT_TIMEOUT = "30min"
DEFAULT_MIGRATION_LOCK_WAIT_S = 300.0
# Lock retries (scripts.migrations.lock_retries): a revision's first attempt waits this long for
# a lock, later ones longer; the retries of one revision stop after the budget.
DEFAULT_LOCK_RETRY_TIMEOUT = "100ms"
DEFAULT_LOCK_RETRY_BUDGET_S = 60.0
# After a revision that took ACCESS EXCLUSIVE, wait this long for standbys to replay it (0: report only)
DEFAULT_WAIT_FOR_REPLICAS_S = 0.0

# setting -> (environment variable, alembic -x key)
SOURCES = {
    "lock_timeout": ("ALP_DB_LOCK_TIMEOUT", "lock_timeout"),
    "statement_timeout": ("ALP_DB_STATEMENT_TIMEOUT", "statement_timeout"),
    "migration_lock_wait": ("ALP_DB_MIGRATION_LOCK_WAIT", "migration_lock_wait"),
    "lock_retry_timeout": ("ALP_DB_LOCK_RETRY_TIMEOUT", "lock_retry_timeout"),
    "lock_retry_budget": ("ALP_DB_LOCK_RETRY_BUDGET", "lock_retry_budget"),
    "wait_for_replicas": ("ALP_DB_WAIT_FOR_REPLICAS", "wait_for_replicas"),
}
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "min": 60_000.0, "h": 3_600_000.0, "d": 86_400_000.0}


def milliseconds(value: str) -> float:
    """A validated PostgreSQL duration in milliseconds (no unit means milliseconds)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(us|ms|s|min|h|d)?", value)
    if match is None:
        raise ConfigError(f"{value!r} is not a duration", "use a PostgreSQL duration such as 5s or 500ms")
    return float(match.group(1)) * _UNIT_MS[match.group(2) or "ms"]


def _seconds(name: str, value: str, env_name: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also refuses nan
        raise ConfigError(
            f"{name.replace('_', ' ')} {value!r} is not a number of seconds",
            f"use e.g. 300 (option, -x {name}=..., or {env_name})",
        )
    return seconds


@dataclass(frozen=True)
class RuntimeSettings:
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT
    statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT
    migration_lock_wait: float = DEFAULT_MIGRATION_LOCK_WAIT_S
    lock_retry_timeout: str = DEFAULT_LOCK_RETRY_TIMEOUT
    lock_retry_budget: float = DEFAULT_LOCK_RETRY_BUDGET_S
    wait_for_replicas: float = DEFAULT_WAIT_FOR_REPLICAS_S

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

        def seconds(setting: str, default: float) -> float:
            return _seconds(setting, chosen.get(setting, str(default)), SOURCES[setting][0])

        return cls(
            lock_timeout=duration("lock_timeout", chosen.get("lock_timeout", DEFAULT_LOCK_TIMEOUT)),
            statement_timeout=duration(
                "statement_timeout", chosen.get("statement_timeout", DEFAULT_STATEMENT_TIMEOUT)
            ),
            migration_lock_wait=seconds("migration_lock_wait", DEFAULT_MIGRATION_LOCK_WAIT_S),
            lock_retry_timeout=duration(
                "lock_retry_timeout", chosen.get("lock_retry_timeout", DEFAULT_LOCK_RETRY_TIMEOUT)
            ),
            lock_retry_budget=seconds("lock_retry_budget", DEFAULT_LOCK_RETRY_BUDGET_S),
            wait_for_replicas=seconds("wait_for_replicas", DEFAULT_WAIT_FOR_REPLICAS_S),
        )
