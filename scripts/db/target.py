"""Which database: ``--database-url`` option, else ``DATABASE_URL``, else the local dev database."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import URL, Connection

from scripts.db.engine import connect, make_engine
from scripts.db.urls import DRIVER, parse_url

ENV_DATABASE_URL = "DATABASE_URL"


def stderr_notice(message: str) -> None:
    print(f"alp-db: {message}", file=sys.stderr)


def resolve_url(
    explicit: str | URL | None = None,
    *,
    notice: Callable[[str], None] = stderr_notice,
) -> URL:
    """The database to use: option > ``DATABASE_URL`` > the local development database."""
    if isinstance(explicit, URL):
        return explicit.set(drivername=DRIVER)
    if explicit:
        return parse_url(explicit)
    from_env = os.environ.get(ENV_DATABASE_URL)
    if from_env:
        return parse_url(from_env)
    from scripts.db import devdb  # imported lazily: only the embedded default needs it

    return devdb.local_database_url(notice=notice)


@contextmanager
def session(database_url: str | URL | None = None, **engine_options: Any) -> Iterator[Connection]:
    """Resolve the database (option > ``DATABASE_URL`` > dev database), connect, and dispose
    of the engine afterwards: the sequence every command runs."""
    engine = make_engine(resolve_url(database_url), **engine_options)
    try:
        with connect(engine) as conn:
            yield conn
    finally:
        engine.dispose()
