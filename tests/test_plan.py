"""``alp-db migration plan``: the locks and rewrites PostgreSQL really takes, per statement.

Every revision here is written into a temporary project on top of whatever the repository's
head is, and acts on tables of its own, so the tests hold as the project grows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL

from scripts.cli import main
from scripts.db.engine import make_engine
from scripts.migrations import api as migrations
from scripts.migrations.plan import MigrationPlan, RevisionPlan, plan_migrations
from scripts.migrations.plan_check import docstring_gaps
from scripts.migrations.scratch import SCRATCH_PREFIX
from tests.project import ProjectCopy

SETUP = """
op.execute("CREATE TABLE plan_parent (id bigint PRIMARY KEY, label text)")
op.execute(
    "CREATE TABLE plan_child (id bigint PRIMARY KEY, parent_id bigint, other_id bigint,"
    " counter bigint, note text)"
)
op.execute("CREATE TABLE plan_events (id bigint NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at)")
"""

# (name, upgrade body): one kind of change each, applied in this order
CHANGES = [
    ("add_flag", 'op.execute("ALTER TABLE plan_parent ADD COLUMN flag boolean NOT NULL DEFAULT false")'),
    ("narrow_counter", 'op.execute("ALTER TABLE plan_child ALTER COLUMN counter TYPE integer")'),
    ("index_note", 'op.execute("CREATE INDEX ix_plan_child_note ON plan_child (note)")'),
    (
        "index_parent_concurrently",
        "with op.get_context().autocommit_block():\n"
        '    op.execute("CREATE INDEX CONCURRENTLY ix_plan_child_parent ON plan_child (parent_id)")',
    ),
    (
        "fk_parent",
        'op.execute("ALTER TABLE plan_child ADD CONSTRAINT fk_plan_child_parent'
        ' FOREIGN KEY (parent_id) REFERENCES plan_parent (id)")',
    ),
    (
        "fk_other_not_valid",
        'op.execute("ALTER TABLE plan_child ADD CONSTRAINT fk_plan_child_other'
        ' FOREIGN KEY (other_id) REFERENCES plan_parent (id) NOT VALID")',
    ),
    ("validate_fk_other", 'op.execute("ALTER TABLE plan_child VALIDATE CONSTRAINT fk_plan_child_other")'),
    ("label_not_null", 'op.execute("ALTER TABLE plan_parent ALTER COLUMN label SET NOT NULL")'),
    (
        "attach_2030",
        'op.execute("CREATE TABLE plan_events_2030 (LIKE plan_events)")\n'
        'op.execute("ALTER TABLE plan_events ATTACH PARTITION plan_events_2030'
        " FOR VALUES FROM ('2030-01-01') TO ('2031-01-01')\")",
    ),
]


def run(url: URL, *statements: str) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            rows: list[tuple] = []
            for statement in statements:
                result = conn.execute(text(statement))
                rows = [tuple(r) for r in result] if result.returns_rows else []
            return rows
    finally:
        engine.dispose()


def next_id(rev: str) -> str:
    return f"{int(rev) + 1:04d}"


def head_of(project: ProjectCopy) -> str:
    head = migrations.script_directory(migrations.alembic_config()).get_current_head()
    assert head is not None
    return head


@pytest.fixture
def target(project: ProjectCopy, db_url: URL) -> Callable[[list[tuple[str, str]]], list[str]]:
    """The test database with plan_* tables holding rows, and ``changes`` left pending."""
    setup = next_id(head_of(project))
    project.add_revision(setup, "plan_tables", head_of(project), SETUP, "pass")
    migrations.migrate(db_url)
    run(
        db_url,
        "INSERT INTO plan_parent SELECT n, 'p' || n FROM generate_series(1, 2000) n",
        "INSERT INTO plan_child SELECT n, n, n, n, 'c' || n FROM generate_series(1, 2000) n",
        "ANALYZE plan_parent",
        "ANALYZE plan_child",
    )

    def add(changes: list[tuple[str, str]]) -> list[str]:
        revisions = []
        down = setup
        for name, body in changes:
            rev = next_id(down)
            project.add_revision(rev, name, down, body, "pass")
            revisions.append(rev)
            down = rev
        return revisions

    return add


def by_name(plan: MigrationPlan, revisions: list[str]) -> dict[str, RevisionPlan]:
    names = dict(zip(revisions, [name for name, _ in CHANGES], strict=False))
    return {names[r.revision]: r for r in plan.revisions}


def locks(revision: RevisionPlan) -> set[tuple[str, str, bool]]:
    return {(lock.relation, lock.mode, lock.measured) for s in revision.statements for lock in s.locks}


def test_plan_reports_the_locks_and_rewrites_postgresql_takes_for_each_kind_of_change(target, db_url):
    revisions = target(CHANGES)
    plan = plan_migrations(db_url)
    assert [r.revision for r in plan.revisions] == revisions
    assert not plan.failed, [r.error for r in plan.revisions]
    got = by_name(plan, revisions)

    # ADD COLUMN with a constant default: metadata only (PostgreSQL 11+), no rewrite
    add_flag = got["add_flag"]
    assert ("public.plan_parent", "ACCESS EXCLUSIVE", True) in locks(add_flag)
    assert [s.rewritten for s in add_flag.statements] == [[]]
    assert not add_flag.blocking

    # bigint -> integer rewrites the table and its indexes under ACCESS EXCLUSIVE
    [narrow] = got["narrow_counter"].statements
    assert "public.plan_child" in narrow.rewritten
    assert ("public.plan_child", "ACCESS EXCLUSIVE", True) in locks(got["narrow_counter"])
    assert got["narrow_counter"].blocking

    # CREATE INDEX: SHARE (blocks writes) while it reads the whole table
    [index] = got["index_note"].statements
    assert ("public.plan_child", "SHARE", True) in locks(got["index_note"])
    assert "public.plan_child" in index.scanned
    assert "public.ix_plan_child_note" in index.created
    assert got["index_note"].blocking

    # CREATE INDEX CONCURRENTLY: an autocommit block, SHARE UPDATE EXCLUSIVE, writes go on
    [concurrent] = got["index_parent_concurrently"].statements
    assert concurrent.autocommit
    assert ("public.plan_child", "SHARE UPDATE EXCLUSIVE", False) in locks(got["index_parent_concurrently"])
    assert not got["index_parent_concurrently"].blocking

    # ADD FOREIGN KEY: SHARE ROW EXCLUSIVE on both tables while it validates every row
    fk = got["fk_parent"]
    assert {
        ("public.plan_child", "SHARE ROW EXCLUSIVE", True),
        ("public.plan_parent", "SHARE ROW EXCLUSIVE", True),
    } <= locks(fk)
    assert fk.blocking
    # ... versus NOT VALID (same locks, no scan) then VALIDATE (SHARE UPDATE EXCLUSIVE: writes go on)
    not_valid = got["fk_other_not_valid"]
    assert ("public.plan_child", "SHARE ROW EXCLUSIVE", True) in locks(not_valid)
    assert [s.scanned for s in not_valid.statements] == [[]]
    assert not not_valid.blocking
    validate = got["validate_fk_other"]
    assert ("public.plan_child", "SHARE UPDATE EXCLUSIVE", True) in locks(validate)
    assert "public.plan_child" in validate.statements[0].scanned
    assert not validate.blocking

    # SET NOT NULL: ACCESS EXCLUSIVE while it scans the table
    not_null = got["label_not_null"]
    assert ("public.plan_parent", "ACCESS EXCLUSIVE", True) in locks(not_null)
    assert "public.plan_parent" in not_null.statements[0].scanned
    assert not_null.blocking

    # ATTACH PARTITION: SHARE UPDATE EXCLUSIVE on the parent (PostgreSQL 12+)
    attach = got["attach_2030"]
    assert ("public.plan_events", "SHARE UPDATE EXCLUSIVE", True) in locks(attach)
    assert not attach.blocking

    assert plan.blocking


def schema_and_version(pg_server, url: URL) -> tuple[str, list[tuple]]:
    return pg_server.pg_dump_schema(url), run(url, "SELECT version_num FROM alembic_version")


def scratch_databases(url: URL) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            names = conn.scalars(
                text("SELECT datname FROM pg_database WHERE starts_with(datname, :p)"), {"p": SCRATCH_PREFIX}
            )
            return [(name,) for name in names]
    finally:
        engine.dispose()


def test_plan_changes_nothing_on_the_target_and_drops_its_scratch_copy(target, db_url, pg_server):
    target(CHANGES[:2])
    before = schema_and_version(pg_server, db_url)
    plan_migrations(db_url)
    assert schema_and_version(pg_server, db_url) == before
    assert scratch_databases(db_url) == []


def test_a_revision_that_fails_is_reported_and_the_scratch_copy_is_still_dropped(target, db_url, pg_server):
    revisions = target([("add_flag", CHANGES[0][1]), ("broken", 'op.execute("SELECT 1 / 0")'), CHANGES[1]])
    before = schema_and_version(pg_server, db_url)
    plan = plan_migrations(db_url)
    assert [r.revision for r in plan.revisions] == revisions[:2]
    assert plan.revisions[1].error and "division by zero" in plan.revisions[1].error
    assert schema_and_version(pg_server, db_url) == before
    assert scratch_databases(db_url) == []


def cli(db_url: URL, *args: str):
    env = {"DATABASE_URL": db_url.render_as_string(hide_password=False)}
    return CliRunner().invoke(main, ["migration", "plan", *args], env=env)


def test_cli_exits_0_when_only_metadata_changes_lock(target, db_url):
    target([CHANGES[0]])
    result = cli(db_url)
    assert result.exit_code == 0, result.output
    assert "ACCESS EXCLUSIVE on public.plan_parent: blocks reads and writes until COMMIT" in result.output


def test_cli_exits_1_and_says_why_when_a_revision_blocks_writes_on_a_table_with_rows(target, db_url):
    target([CHANGES[0], CHANGES[2]])
    result = cli(db_url, "--format", "json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.output[result.output.index("{") :])
    assert data["blocking"] is True
    assert [r["blocking"] for r in data["revisions"]] == [False, True]
    [index] = data["revisions"][1]["statements"]
    assert index["risks"] and "holding SHARE on public.plan_child (blocks writes" in index["risks"][0]


def test_nothing_pending_needs_no_scratch_copy(db_url):
    plan = plan_migrations(db_url)
    assert plan.revisions == [] and plan.scratch == "none needed"


def with_docstring(path, docstring: str) -> None:
    source = path.read_text()
    first_end = source.index('"""', 3) + 3
    path.write_text(f'"""{docstring}"""' + source[first_end:])


def test_docstring_check_flags_a_write_blocking_lock_the_docstring_does_not_name(target, db_url, project):
    [silent, honest] = target(
        [
            ("index_note", 'op.execute("CREATE INDEX ix_plan_child_note ON plan_child (note)")'),
            ("flag", 'op.execute("ALTER TABLE plan_parent ADD COLUMN flag boolean DEFAULT false")'),
        ]
    )
    with_docstring(next(project.versions.glob(f"{silent}_*.py")), "Index notes.\n\nWhat it locks: nothing.\n")
    with_docstring(
        next(project.versions.glob(f"{honest}_*.py")),
        "Flag parents.\n\nWhat it locks: ACCESS EXCLUSIVE on plan_parent, metadata only.\n",
    )
    gaps = docstring_gaps(plan_migrations(db_url))
    assert [(g.revision, g.missing) for g in gaps] == [(silent, ["SHARE on plan_child"])]
    assert gaps[0].measured_line == "What it locks: SHARE on plan_child (scans public.plan_child)."

    env = {"DATABASE_URL": db_url.render_as_string(hide_password=False)}
    result = CliRunner().invoke(main, ["validate-migrations", "--plan"], env=env)
    assert result.exit_code == 1, result.output
    assert (
        f"[docstring-names-measured-locks] {silent}: its docstring does not mention SHARE on plan_child"
        in (result.output)
    )


def current_version(url: URL) -> list[tuple]:
    return run(url, "SELECT version_num FROM alembic_version")


def test_migrate_plan_off_a_terminal_refuses_blocking_steps_without_yes(target, db_url):
    before = current_version(db_url)
    [_, index] = target([CHANGES[0], CHANGES[2]])
    env = {"DATABASE_URL": db_url.render_as_string(hide_password=False)}
    refused = CliRunner().invoke(main, ["migrate", "--plan"], env=env)
    assert refused.exit_code == 1, refused.output
    assert "rerun with --yes" in refused.output
    assert current_version(db_url) == before
    applied = CliRunner().invoke(main, ["migrate", "--plan", "--yes"], env=env)
    assert applied.exit_code == 0, applied.output
    assert current_version(db_url) == [(index,)]


def test_migrate_plan_applies_a_plan_without_blocking_steps_and_exactly_what_was_planned(
    target, db_url, project
):
    [flag] = target([CHANGES[0]])
    env = {"DATABASE_URL": db_url.render_as_string(hide_password=False)}
    result = CliRunner().invoke(main, ["migrate", "--plan"], env=env)
    assert result.exit_code == 0, result.output
    assert current_version(db_url) == [(flag,)]


def test_offline_sql_with_plan_heads_each_revision_block_with_its_measured_locks(target, db_url, project):
    [flag] = target([CHANGES[0]])
    env = {**os.environ, "DATABASE_URL": db_url.render_as_string(hide_password=False)}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", "plan=1", "upgrade", "head", "--sql"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    sql = result.stdout
    header = sql.index("-- alp-db plan, measured on the scratch database")
    lock = sql.index("ACCESS EXCLUSIVE on public.plan_parent: blocks reads and writes until COMMIT")
    assert sql[sql.rindex("\n", 0, lock) + 1 :].startswith("--")
    statement = sql.index("\nALTER TABLE plan_parent ADD COLUMN flag")  # the SQL itself, not a comment
    assert header < lock < statement
    assert f"--   {flag}" in sql
    assert scratch_databases(db_url) == []


def test_a_role_that_may_not_create_databases_plans_on_a_throwaway_cluster(target, db_url, make_role):
    target([CHANGES[0]])
    reader = make_role("plan_reader", db_url)
    quoted = postgresql.dialect().identifier_preparer.quote(reader)
    run(
        db_url,
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {quoted}",
        # pg_dump reads each sequence's state, schema-only too (PostgreSQL 15's pg_dump)
        f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}",
    )
    plan = plan_migrations(db_url.set(username=reader))
    assert "throwaway cluster (the role may not create databases)" in plan.scratch
    [revision] = plan.revisions
    assert ("public.plan_parent", "ACCESS EXCLUSIVE", True) in locks(revision)
    assert scratch_databases(db_url) == []
