"""The guide's commands: generate, status, rollback, test-connection — library and CLI wiring."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import URL

from scripts.cli import main
from scripts.db.engine import make_engine
from scripts.errors import ConfigError
from scripts.migrations import api as migrations
from scripts.migrations.revisions import generate_revision, validate_name
from scripts.migrations.rollback import IrreversibleRevision, plan_rollback, rollback
from scripts.migrations.status import migration_status
from scripts.ops.connection_check import check_connection
from tests.project import HEAD, NEXT, SHIPPED, SHIPPED_NAMES

USER_PREFERENCES_UPGRADE = """
    op.create_table(
        "user_preferences",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("preference_key", sa.String(100), nullable=False),
        sa.Column("preference_value", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_user_preferences_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_user_preferences"),
        sa.UniqueConstraint("user_id", "preference_key", name="uq_user_preferences_user_id_preference_key"),
    )
    op.create_index("ix_user_preferences_preference_key", "user_preferences", ["preference_key"])
"""
USER_PREFERENCES_DOWNGRADE = """
    op.drop_index("ix_user_preferences_preference_key", table_name="user_preferences")
    op.drop_table("user_preferences")
"""


def fill_revision(path, upgrade: str, downgrade: str) -> None:
    source = path.read_text()
    source = source.replace(
        "from alembic import op\n", "from alembic import op\nfrom sqlalchemy.dialects import postgresql\n"
    )
    up_body = "\n".join(
        "    " + line[4:] if line.startswith("    ") else line for line in upgrade.strip("\n").splitlines()
    )
    down_body = "\n".join(
        "    " + line[4:] if line.startswith("    ") else line for line in downgrade.strip("\n").splitlines()
    )
    source = source.replace("def upgrade() -> None:\n    pass", "def upgrade() -> None:\n" + up_body, 1)
    source = source.replace("def downgrade() -> None:\n    pass", "def downgrade() -> None:\n" + down_body, 1)
    path.write_text(source)


def table_exists(url: URL, name: str) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(text("SELECT to_regclass(:n)"), {"n": name}) is not None
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "required"),
        ("   ", "required"),
        ("AddUserPreferences", "snake_case"),
        ("add-user-preferences", "snake_case"),
        ("preferences", "snake_case"),
        ("update_schema", "does not say what"),
        ("fix_bug", "does not say what"),
    ],
)
def test_generate_rejects_empty_malformed_and_vague_names_with_a_hint(name: str, problem: str):
    with pytest.raises(ConfigError, match=problem) as caught:
        validate_name(name)
    assert "add_user_preferences_table" in str(caught.value)


def test_guide_user_preferences_example_round_trips_generate_upgrade_rollback(project, db_url: URL):
    path = generate_revision("add_user_preferences_table")
    assert path.name == f"{NEXT}_add_user_preferences_table.py"
    source = path.read_text()
    assert "def upgrade() -> None:" in source and "def downgrade() -> None:" in source
    assert f"down_revision: str | Sequence[str] | None = '{HEAD}'" in source
    fill_revision(path, USER_PREFERENCES_UPGRADE, USER_PREFERENCES_DOWNGRADE)

    result = migrations.migrate(db_url)
    assert result.applied == [NEXT] and table_exists(db_url, "user_preferences")

    plan = plan_rollback(db_url)
    assert plan.revisions == [(NEXT, f"{NEXT}_add_user_preferences_table")] and plan.target == HEAD
    rollback(plan, db_url)
    assert not table_exists(db_url, "user_preferences")
    engine = make_engine(db_url)
    with engine.connect() as conn:
        events = conn.execute(
            text("SELECT direction, success FROM migration_history WHERE revision = :r ORDER BY id"),
            {"r": NEXT},
        ).all()
    engine.dispose()
    assert [tuple(e) for e in events] == [("upgrade", True), ("downgrade", True)]


def test_generate_autogenerate_right_after_head_writes_an_empty_revision(project, db_url: URL):
    path = generate_revision("check_models_match_database", autogenerate=True, database_url=db_url)
    source = path.read_text()
    body = source[source.index("def upgrade() -> None:") :]
    assert "op." not in body and body.count("pass") == 2


def test_rollback_refuses_a_revision_without_a_downgrade_and_changes_nothing(project, db_url: URL):
    project.add_revision(
        NEXT, "add_items_origin_column", HEAD, 'op.execute("ALTER TABLE items ADD COLUMN origin text")'
    )
    migrations.upgrade(db_url)
    with pytest.raises(IrreversibleRevision, match=f"{NEXT} cannot be rolled back"):
        plan_rollback(db_url)
    assert migrations.current_revision(db_url) == NEXT


def test_rollback_steps_and_to_undo_the_right_revisions(db_url: URL):
    last_two = [SHIPPED[-1], SHIPPED[-2]]
    assert [rev for rev, _ in plan_rollback(db_url, steps=2).revisions] == last_two
    plan = plan_rollback(db_url, to=SHIPPED[-3])
    assert [rev for rev, _ in plan.revisions] == last_two and plan.target == SHIPPED[-3]
    rollback(plan, db_url)
    assert migrations.current_revision(db_url) == SHIPPED[-3]


def test_status_lists_every_revision_with_when_how_long_who_and_checksum(project, db_url: URL):
    project.add_revision(
        NEXT, "add_items_origin_column", HEAD, 'op.execute("ALTER TABLE items ADD COLUMN origin text")'
    )
    report = migration_status(db_url)
    assert [r.revision for r in report.revisions] == [*SHIPPED, NEXT]
    assert report.pending == [NEXT]
    applied = report.revisions[0]
    assert applied.applied and applied.applied_at is not None and applied.duration_ms is not None
    assert applied.applied_by and applied.checksum_ok is True

    sql_file = project.versions / "0002_create_indexes.upgrade.sql"
    sql_file.write_text(sql_file.read_text() + "\n-- edited\n")
    result = CliRunner().invoke(
        main, ["migration", "status", "--format", "json", "--database-url", db_url.render_as_string(False)]
    )
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    by_rev = {r["revision"]: r for r in data["revisions"]}
    assert by_rev["0002"]["checksum_ok"] is False and by_rev["0001"]["checksum_ok"] is True
    assert data["current"] == [HEAD]


def test_test_connection_reports_version_latency_revision_and_privileges(db_url: URL):
    report = check_connection(db_url)
    assert report.server_version[:2].isdigit() and report.latency_ms >= 0
    assert report.current_revision == HEAD and report.can_migrate and report.missing == []
    result = CliRunner().invoke(main, ["test-connection", "--database-url", db_url.render_as_string(False)])
    assert result.exit_code == 0 and "can migrate: yes" in result.stdout


def test_test_connection_says_when_the_role_cannot_migrate(db_url: URL, make_role):
    role = make_role("alp_reader", db_url)
    engine = make_engine(db_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
    engine.dispose()
    report = check_connection(db_url.set(username=role))
    assert not report.can_migrate
    assert "CREATE on schema public" in report.missing
    assert any(m.startswith("ownership of") for m in report.missing)
    result = CliRunner().invoke(
        main, ["test-connection", "--database-url", db_url.set(username=role).render_as_string(False)]
    )
    assert result.exit_code == 1 and "can migrate: no" in result.stdout


def test_migrate_cli_applies_then_says_nothing_to_do(empty_db_url: URL):
    url = empty_db_url.render_as_string(False)
    first = CliRunner().invoke(main, ["migrate", "--database-url", url])
    assert first.exit_code == 0, first.output
    assert f"applied {len(SHIPPED)} revision(s): {', '.join(SHIPPED)}; now at {HEAD}" in first.stdout
    second = CliRunner().invoke(main, ["migrate", "--database-url", url])
    assert f"nothing to do: database already at {HEAD}" in second.stdout


def test_migrate_sql_prints_offline_sql_without_a_database(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("ALP_DB_DEV_DIR", "/nonexistent/never-created")
    result = CliRunner().invoke(main, ["migrate", "--sql"])
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE attempts" in result.stdout and "INSERT INTO migration_history" in result.stdout


def test_migrate_backup_dumps_before_migrating(project, empty_db_url: URL):
    result = CliRunner().invoke(
        main, ["migrate", "--backup", "--database-url", empty_db_url.render_as_string(False)]
    )
    assert result.exit_code == 0, result.output
    dumps = list((project.root / "backups").glob(f"{empty_db_url.database}_*.dump"))
    assert len(dumps) == 1 and (dumps[0].stat().st_mode & 0o777) == 0o600
    assert "backup written" in result.stderr and f"now at {HEAD}" in result.stdout
    assert " kB)" in result.stderr and "bytes" not in result.stderr  # sizes: one way everywhere


def test_rollback_without_a_terminal_needs_yes(db_url: URL):
    url = db_url.render_as_string(False)
    refused = CliRunner().invoke(main, ["migration", "rollback", "--database-url", url])
    assert refused.exit_code == 2 and "pass --yes" in refused.stderr
    assert migrations.current_revision(db_url) == HEAD
    done = CliRunner().invoke(main, ["migration", "rollback", "--yes", "--database-url", url])
    assert (
        done.exit_code == 0
        and f"rolled back {HEAD} ({SHIPPED_NAMES[HEAD]}); now at {SHIPPED[-2]}" in done.stdout
    )


def test_plain_alembic_autogenerate_gets_the_next_four_digit_id(project, db_url: URL):
    from alembic import command

    config = migrations.alembic_config(db_url)
    script = command.revision(config, message="check models against database", autogenerate=True)
    assert script is not None and not isinstance(script, list)
    assert script.revision == NEXT
    assert script.path.endswith(f"{NEXT}_check_models_against_database.py")


def test_plain_alembic_autogenerate_refuses_a_vague_name(project, db_url: URL):
    from alembic import command
    from alembic.util import CommandError

    config = migrations.alembic_config(db_url)
    with pytest.raises(CommandError, match="does not say what the migration does"):
        command.revision(config, message="fix bug", autogenerate=True)
    assert not list(project.versions.glob("*fix_bug*"))


@pytest.fixture
def connect_only_url(db_url: URL, make_role) -> URL:  # type: ignore[no-untyped-def]
    """db_url (at head) as a role that may only CONNECT: no USAGE on public, no TEMPORARY."""
    role = make_role("alp_connect_only", db_url)
    engine = make_engine(db_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("REVOKE ALL ON SCHEMA public FROM PUBLIC"))
        database = conn.dialect.identifier_preparer.quote(str(db_url.database))
        conn.exec_driver_sql(f"REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC")
    engine.dispose()
    return db_url.set(username=role)


def test_test_connection_of_a_connect_only_role_does_not_call_the_database_empty(connect_only_url: URL):
    report = check_connection(connect_only_url)
    assert report.current_revision is None and not report.revision_readable
    assert report.missing[:3] == [
        "USAGE on schema public",
        "CREATE on schema public",
        "TEMPORARY on the database",
    ]
    result = CliRunner().invoke(
        main, ["test-connection", "--database-url", connect_only_url.render_as_string(False)]
    )
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.output
    assert "revision:   unknown (this role may not read alembic_version)" in result.stdout
    assert "empty database" not in result.stdout and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("command", "fragment"),
    [("health", "permission denied for schema public"), ("backup", "permission denied")],
)
def test_a_connect_only_role_gets_one_line_from(command: str, fragment: str, connect_only_url: URL, tmp_path):
    args = [command, "--database-url", connect_only_url.render_as_string(False)]
    if command == "backup":
        args += ["--output", str(tmp_path / "denied.dump")]
    result = CliRunner().invoke(main, args)
    assert isinstance(result.exception, SystemExit) and result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("alp-db: error:")]
    assert len(errors) == 1 and fragment in errors[0], result.stderr
    assert "Traceback" not in result.output


def test_test_migrations_uses_database_url_and_offers_the_replace_it_has(db_url: URL):
    env = {"DATABASE_URL": db_url.render_as_string(False)}
    first = CliRunner().invoke(main, ["test-migrations", "--format", "json"], env=env)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["throwaway"] is False and db_url.database in report["database"]

    again = CliRunner().invoke(main, ["test-migrations", "--format", "json"], env=env)
    assert again.exit_code == 1
    seed_step = next(s for s in json.loads(again.stdout)["steps"] if s["name"] == "seed data")
    assert seed_step["status"] == "fail" and "--replace" in seed_step["detail"]

    replaced = CliRunner().invoke(main, ["test-migrations", "--replace", "--format", "json"], env=env)
    assert replaced.exit_code == 0, replaced.output
    assert "--replace" in CliRunner().invoke(main, ["test-migrations", "--help"]).stdout


def test_dev_db_destroy_without_a_terminal_needs_yes(tmp_path, monkeypatch):
    home = tmp_path / ".pgdata"
    (home / "data").mkdir(parents=True)
    monkeypatch.setenv("ALP_DB_DEV_DIR", str(home))
    refused = CliRunner().invoke(main, ["dev-db", "destroy"], input=None)
    assert refused.exit_code == 2 and "pass --yes" in refused.stderr
    assert (home / "data").is_dir()


def test_dev_db_status_of_a_database_never_made_exits_1(tmp_path, monkeypatch):
    monkeypatch.setenv("ALP_DB_DEV_DIR", str(tmp_path / ".pgdata"))
    result = CliRunner().invoke(main, ["dev-db", "status"])
    assert result.exit_code == 1 and result.stdout.startswith("not initialised")
