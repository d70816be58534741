"""PostgreSQL durations as ``lock_timeout`` and ``statement_timeout`` accept them."""

from __future__ import annotations

import re

from scripts.errors import ConfigError

# A PostgreSQL duration as lock_timeout/statement_timeout accept it ("0" disables).
_DURATION = re.compile(r"^\d+(\.\d+)?\s*(us|ms|s|min|h|d)?$")


def duration(name: str, value: str) -> str:
    value = value.replace(" ", "")
    if not _DURATION.match(value):
        raise ConfigError(
            f"{name} {value!r} is not a duration", "use a PostgreSQL duration such as 5s or 500ms"
        )
    return value
