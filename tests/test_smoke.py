"""test-migrations: the guide's six steps, on a throwaway database or the one given."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import URL

from scripts.cli import main
from scripts.db.engine import make_engine
from scripts.ops.smoke import run_smoke

STEPS = [
    "connectivity",
    "round trip of new revisions",
    "migrations to head",
    "schema validation",
    "seed data",
    "basic queries",
    "summary",
]


def test_test_migrations_passes_on_a_throwaway_database():
    report = run_smoke()
    assert [step.name for step in report.steps] == STEPS
    assert [step.status for step in report.steps] == ["pass"] * len(STEPS), report.steps
    assert report.throwaway


def test_test_migrations_reports_the_failing_step_and_skips_the_rest(db_url: URL):
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_items_active_difficulty"))
    engine.dispose()
    result = CliRunner().invoke(
        main, ["test-migrations", "--database-url", db_url.render_as_string(False), "--format", "json"]
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    statuses = {step["name"]: step["status"] for step in report["steps"]}
    assert statuses == {
        "connectivity": "pass",
        "round trip of new revisions": "pass",
        "migrations to head": "pass",
        "schema validation": "fail",
        "seed data": "skipped",
        "basic queries": "skipped",
        "summary": "fail",
    }
    failed = next(step for step in report["steps"] if step["name"] == "schema validation")
    assert "ix_items_active_difficulty" in failed["detail"]
    assert report["ok"] is False and report["throwaway"] is False


def test_test_migrations_prints_one_line_per_step(db_url: URL):
    result = CliRunner().invoke(main, ["test-migrations", "--database-url", db_url.render_as_string(False)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(STEPS) and all(" PASS " in line for line in lines)


def test_test_migrations_round_trips_a_new_revision_and_catches_one_that_leaves_a_trace(
    project, db_url: URL
) -> None:
    from scripts.ops.round_trip import round_trip_pending

    head, new = project.head, project.next_id
    project.add_revision(
        new,
        "add_items_origin_column",
        head,
        'op.execute("ALTER TABLE items ADD COLUMN origin text")',
        'op.execute("ALTER TABLE items DROP COLUMN origin")',
    )
    assert round_trip_pending(db_url).revisions == [new]

    leaky = f"{int(new) + 1:04d}"
    project.add_revision(
        leaky,
        "add_items_source_column",
        new,
        'op.execute("ALTER TABLE items ADD COLUMN source text")',
        "op.execute(\"ALTER TABLE items ALTER COLUMN source SET DEFAULT 'x'\")",
    )
    report = run_smoke(db_url)
    step = next(s for s in report.steps if s.name == "round trip of new revisions")
    assert step.status == "fail"
    assert f"revision {leaky}: downgrade left the schema changed" in step.detail
    assert "items.source" in step.detail
