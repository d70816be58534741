"""pytest-alembic's built-in invariants, run against a real PostgreSQL.

pytest-alembic hands env.py an Engine in ``config.attributes["connection"]``; the runtime
accepts it as it accepts a Connection. Its fixtures and tests are imported here (its own
collector is turned off in pyproject.toml: it fails on pytest 9).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.config import Config
from pytest_alembic.plugin.fixtures import alembic_runner
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from pytest_alembic.tests.experimental import test_downgrade_leaves_no_trace
from sqlalchemy.engine import URL, Engine

from scripts.db.engine import make_engine
from scripts.migrations import api as migrations

__all__ = [
    "alembic_runner",
    "test_downgrade_leaves_no_trace",
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture
def alembic_config() -> Config:
    return migrations.alembic_config()


@pytest.fixture
def alembic_engine(empty_db_url: URL) -> Iterator[Engine]:
    engine = make_engine(empty_db_url)
    try:
        yield engine
    finally:
        engine.dispose()
