"""``test-migrations``: the guide's six steps, each a pass/fail line.

connectivity -> migrations to head -> schema validation -> seed data -> basic queries
-> summary. By default against a throwaway PostgreSQL started for the run (never real
data); ``--database-url`` runs it against a database of your choosing instead.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from scripts.db.engine import connect, make_engine
from scripts.db.target import resolve_url
from scripts.db.urls import redact

# The guide's monitoring queries, every analytics view, and the platform's hot paths.
BASIC_QUERIES = {
    "migration history": "SELECT * FROM migration_history ORDER BY applied_at DESC LIMIT 5",
    "database size": "SELECT pg_size_pretty(pg_database_size(current_database()))",
    "table_sizes": "SELECT * FROM table_sizes LIMIT 10",
    "slow_queries": "SELECT * FROM slow_queries LIMIT 5",
    "index_usage": "SELECT * FROM index_usage WHERE idx_tup_read < 1000",
    "connection_stats": "SELECT * FROM connection_stats",
    "system_health": "SELECT * FROM system_health",
    "item_statistics": "SELECT * FROM item_statistics ORDER BY attempts DESC LIMIT 10",
    "learner_progress": "SELECT * FROM learner_progress ORDER BY attempts DESC LIMIT 10",
    "daily_activity": "SELECT * FROM daily_activity ORDER BY day DESC LIMIT 10",
    "a learner's recent attempts": (
        "SELECT a.* FROM attempts a WHERE a.user_id = (SELECT user_id FROM attempts LIMIT 1)"
        " ORDER BY a.attempted_at DESC LIMIT 20"
    ),
    "active items near an ability": (
        "SELECT id FROM items WHERE status = 'active' AND difficulty BETWEEN -0.5 AND 0.5 LIMIT 20"
    ),
    "tables the guide lists": (
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    ),
    "indexes the guide lists": "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'",
}
# After seeding, these must return rows: empty analytics would mean broken views or data.
MUST_RETURN_ROWS = frozenset(
    {"table_sizes", "system_health", "item_statistics", "learner_progress", "daily_activity",
     "a learner's recent attempts", "active items near an ability"}
)  # fmt: skip
SMOKE_SCALE = {"users": 200, "items": 100, "attempts": 5_000}


@dataclass
class StepResult:
    number: int
    name: str
    status: str  # 'pass' | 'fail' | 'skipped'
    seconds: float
    detail: str


@dataclass
class SmokeReport:
    database: str
    throwaway: bool
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.status == "pass" for step in self.steps)

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


class _Failed(Exception):
    """A step's own failure, carrying the line to print (never raised out of this module)."""


def run_smoke(
    database_url: str | URL | None = None,
    *,
    seed_value: int = 42,
    replace: bool = False,
    on_step: Callable[[StepResult], None] | None = None,
) -> SmokeReport:
    with _target(database_url) as (url, throwaway):
        report = SmokeReport(database=redact(url), throwaway=throwaway)
        steps: list[tuple[str, Callable[[], str]]] = [
            ("connectivity", lambda: _connectivity(url)),
            ("migrations to head", lambda: _migrations(url)),
            ("schema validation", lambda: _validation(url)),
            ("seed data", lambda: _seed(url, seed_value, force=throwaway, replace=replace or throwaway)),
            ("basic queries", lambda: _queries(url)),
        ]
        failed = False
        for number, (name, action) in enumerate(steps, start=1):
            result = _run_step(number, name, action, skip=failed)
            failed = failed or result.status != "pass"
            report.steps.append(result)
            if on_step:
                on_step(result)
        passed = sum(step.status == "pass" for step in report.steps)
        total_s = sum(step.seconds for step in report.steps)
        summary = StepResult(
            number=len(steps) + 1,
            name="summary",
            status="fail" if failed else "pass",
            seconds=0.0,
            detail=f"{passed}/{len(steps)} steps passed in {total_s:.1f}s",
        )
        report.steps.append(summary)
        if on_step:
            on_step(summary)
        return report


def _run_step(number: int, name: str, action: Callable[[], str], *, skip: bool) -> StepResult:
    from scripts.errors import AlpDbError

    if skip:
        return StepResult(number, name, "skipped", 0.0, "an earlier step failed")
    started = time.perf_counter()
    try:
        detail, status = action(), "pass"
    except (AlpDbError, _Failed) as exc:
        detail, status = str(exc), "fail"
    return StepResult(number, name, status, round(time.perf_counter() - started, 3), detail)


@contextmanager
def _target(database_url: str | URL | None) -> Iterator[tuple[URL, bool]]:
    """The database to test: the one given, else a throwaway cluster removed afterwards."""
    if database_url is not None:
        yield resolve_url(database_url), False
        return
    from scripts.db.devdb import Cluster, ensure_database

    home = Path(tempfile.mkdtemp(prefix="alp-db-smoke-"))
    cluster = Cluster(home=home / "pg", settings={"fsync": "off", "synchronous_commit": "off"})
    try:
        cluster.ensure_running()
        ensure_database(cluster, "alp_smoke")
        yield cluster.url("alp_smoke"), True
    finally:
        cluster.destroy()
        shutil.rmtree(home, ignore_errors=True)


def _connectivity(url: URL) -> str:
    from scripts.ops.connection_check import check_connection

    report = check_connection(url)
    return f"PostgreSQL {report.server_version}, {report.latency_ms} ms round trip"


def _migrations(url: URL) -> str:
    from scripts.migrations.api import migrate

    result = migrate(url)
    applied = f"applied {', '.join(result.applied)}" if result.applied else "nothing pending"
    return f"at {result.after} ({applied})"


def _validation(url: URL) -> str:
    from scripts.schema_diff import validate_schema

    report = validate_schema(url)
    errors = [f for f in report.findings if f.severity == "error"]
    if errors:
        raise _Failed(f"{len(errors)} difference(s), first: {errors[0].kind} {errors[0].object}")
    return f"models and database agree ({report.tables_checked} tables)"


def _seed(url: URL, seed_value: int, *, force: bool, replace: bool) -> str:
    from scripts.seed import make_plan, seed

    # replace (TRUNCATE) in the throwaway database, or where asked: a database you name is
    # emptied only with --replace
    result = seed(url, make_plan("small", seed=seed_value, **SMOKE_SCALE), force=force, replace=replace)
    return ", ".join(f"{table} {rows}" for table, rows in result.rows.items())


def _queries(url: URL) -> str:
    engine = make_engine(url)
    try:
        with connect(engine) as conn:
            for name, sql in BASIC_QUERIES.items():
                try:
                    rows = conn.execute(text(sql)).all()
                except DBAPIError as exc:
                    raise _Failed(f"{name}: {str(exc.orig).splitlines()[0]}") from None
                if not rows and name in MUST_RETURN_ROWS:
                    raise _Failed(f"{name}: no rows, although the database was just seeded")
    finally:
        engine.dispose()
    return f"{len(BASIC_QUERIES)} queries answered"
