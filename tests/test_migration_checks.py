"""validate-migrations: revision files, squawk lint, and history against alembic_version."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine

from scripts.checks.files import TEMPLATE_PLACEHOLDERS, find_heads, scan_versions
from scripts.checks.report import Finding, ValidationReport, validate_migrations
from scripts.cli import main
from scripts.migrations import history
from tests.conftest import free_port
from tests.project import HEAD, NEXT, REPO_ROOT, SHIPPED, SHIPPED_NAMES, ProjectCopy

AFTER_NEXT = f"{int(NEXT) + 1:04d}"

SQL_REVISION = '''\
"""{doc}

Revision ID: {rev}
Revises: {down}
"""

from scripts.migrations.sqlfiles import execute_sql_file

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_sql_file(__file__, "upgrade")


def downgrade() -> None:
    raise NotImplementedError("test revision")
'''

PYTHON_REVISION = '''\
"""{doc}

Revision ID: {rev}
Revises: {down}
"""

import sqlalchemy as sa

from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
{body}


def downgrade() -> None:
    raise NotImplementedError("test revision")
'''


@pytest.fixture
def versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the project's alembic.ini and alembic/ that a test may edit; ALP_DB_HOME points at it."""
    shutil.copy(REPO_ROOT / "alembic.ini", tmp_path / "alembic.ini")
    shutil.copytree(REPO_ROOT / "alembic", tmp_path / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("ALP_DB_HOME", str(tmp_path))
    yield tmp_path / "alembic" / "versions"


def add_sql_revision(versions: Path, stem: str, down: str, sql: str) -> None:
    rev = stem[:4]
    (versions / f"{stem}.py").write_text(SQL_REVISION.format(doc=stem, rev=rev, down=down))
    (versions / f"{stem}.upgrade.sql").write_text(textwrap.dedent(sql).strip() + "\n")


def add_python_revision(versions: Path, stem: str, down: str, body: str) -> None:
    rev = stem[:4]
    indented = textwrap.indent(textwrap.dedent(body).strip(), "    ")
    (versions / f"{stem}.py").write_text(PYTHON_REVISION.format(doc=stem, rev=rev, down=down, body=indented))


def only(report: ValidationReport, code: str) -> Finding:
    matching = [f for f in report.findings if f.code == code]
    assert len(matching) == 1, report.findings
    return matching[0]


def codes(report: ValidationReport) -> set[str]:
    return {f.code for f in report.findings}


def execute(engine: Engine, sql: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


# -- the shipped tree ----------------------------------------------------------------------


def test_shipped_tree_at_head_has_no_findings(db_url: URL) -> None:
    report = validate_migrations(db_url)
    assert report.findings == []
    assert report.checked == ["files", "lint", "history"]
    assert report.heads == [HEAD]
    assert report.exit_code == 0


def test_shipped_tree_offline_checks_files_and_lint_only() -> None:
    report = validate_migrations(offline=True)
    assert report.findings == []
    assert report.checked == ["files", "lint"]
    assert report.revisions == len(SHIPPED)


# -- history against the files ------------------------------------------------------------


def test_edited_applied_revision_is_reported_naming_revision_and_file(versions: Path, db_url: URL) -> None:
    sql = versions / "0002_create_indexes.upgrade.sql"
    sql.write_text(sql.read_text() + "CREATE INDEX ix_users_role ON users (role);\n")

    report = validate_migrations(db_url)

    finding = only(report, "checksum-mismatch")
    assert finding.revision == "0002"
    assert "revision 0002 was edited after it was applied" in finding.message
    assert "0002_create_indexes.upgrade.sql" in finding.message
    assert "new revision" in finding.how_to_fix
    assert report.exit_code == 1


def test_missing_file_of_applied_revision_is_reported(versions: Path, db_url: URL) -> None:
    for path in versions.glob(f"{HEAD}_*"):
        path.unlink()

    report = validate_migrations(db_url)

    finding = only(report, "missing-file")
    assert finding.revision == HEAD
    assert f"{SHIPPED_NAMES[HEAD]}.py is missing" in finding.message
    assert report.exit_code == 1


def test_missing_middle_revision_is_reported_without_crashing(versions: Path, db_url: URL) -> None:
    for path in versions.glob("0002_*"):
        path.unlink()

    report = validate_migrations(db_url)

    assert only(report, "missing-file").revision == "0002"
    assert "revises 0002" in only(report, "unknown-down-revision").message
    assert "0002" in only(report, "numbering-gap").message


def test_last_event_a_downgrade_while_alembic_version_says_applied(engine: Engine, db_url: URL) -> None:
    row = history.HistoryRow(HEAD, SHIPPED_NAMES[HEAD], "downgrade", None, 3, True)
    with engine.begin() as conn:
        conn.execute(row.insert())

    finding = only(validate_migrations(db_url), "history-says-downgraded")

    assert finding.revision == HEAD
    assert "last successful event in migration_history is a downgrade" in finding.message


def test_applied_revision_without_a_history_row_is_reported(engine: Engine, db_url: URL) -> None:
    execute(engine, "DELETE FROM migration_history WHERE revision = '0003'")

    finding = only(validate_migrations(db_url), "applied-without-history")

    assert finding.revision == "0003"


def test_revision_recorded_before_the_one_it_builds_on_is_out_of_order(engine: Engine, db_url: URL) -> None:
    # 0001's only upgrade row now comes after 0002's, as if 0002 had been applied first
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM migration_history WHERE revision = '0001'"))
        checksum = history.checksum(REPO_ROOT / "alembic" / "versions" / "0001_initial_schema.py")
        conn.execute(history.HistoryRow("0001", "0001_initial_schema", "upgrade", checksum, 5, True).insert())

    finding = only(validate_migrations(db_url), "history-out-of-order")

    assert finding.revision == "0002"
    assert "before the revision it builds on, 0001" in finding.message


def test_history_upgrade_missing_from_alembic_version_is_reported(engine: Engine, db_url: URL) -> None:
    execute(engine, "UPDATE alembic_version SET version_num = :v", v=SHIPPED[-2])

    finding = only(validate_migrations(db_url), "history-says-applied")

    assert finding.revision == HEAD
    assert "alembic_version does not include it" in finding.message


def test_failed_attempt_rows_do_not_count_as_applied(engine: Engine, db_url: URL) -> None:
    row = history.HistoryRow(HEAD, SHIPPED_NAMES[HEAD], "downgrade", None, 3, False, "boom")
    with engine.begin() as conn:
        conn.execute(row.insert())

    assert validate_migrations(db_url).findings == []


def test_unreachable_database_falls_back_to_file_checks() -> None:
    url = f"postgresql://someone:s3cret-pw@127.0.0.1:{free_port()}/nowhere"

    report = validate_migrations(url)

    finding = only(report, "database-not-checked")
    assert finding.severity == "warning"
    assert "s3cret-pw" not in finding.message + finding.how_to_fix
    assert report.checked == ["files", "lint"]
    assert report.exit_code == 0


# -- files ---------------------------------------------------------------------------------


def test_two_heads_are_reported(versions: Path) -> None:
    add_sql_revision(
        versions, f"{NEXT}_add_users_nickname", SHIPPED[-2], "ALTER TABLE users ADD COLUMN nickname text;"
    )

    report = validate_migrations(offline=True)

    finding = only(report, "multiple-heads")
    assert f"2 heads ({HEAD}, {NEXT})" in finding.message
    assert report.heads == [HEAD, NEXT]
    assert report.exit_code == 1


def test_malformed_file_name_and_numbering_gap_are_reported(versions: Path) -> None:
    add_sql_revision(
        versions, f"{AFTER_NEXT}_AddNickname", HEAD, "ALTER TABLE users ADD COLUMN nickname text;"
    )

    report = validate_migrations(offline=True)

    assert f"{AFTER_NEXT}_AddNickname.py" in only(report, "malformed-file-name").message
    gap = only(report, "numbering-gap")
    assert NEXT in gap.message and gap.severity == "warning"


def test_revision_id_must_equal_file_number(versions: Path) -> None:
    add_sql_revision(
        versions, f"{NEXT}_add_users_nickname", HEAD, "ALTER TABLE users ADD COLUMN nickname text;"
    )
    module = versions / f"{NEXT}_add_users_nickname.py"
    module.write_text(module.read_text().replace(f'revision = "{NEXT}"', 'revision = "a1b2c3"'))

    finding = only(validate_migrations(offline=True), "revision-id-mismatch")

    assert f"revision id 'a1b2c3' differs from its file number '{NEXT}'" in finding.message


def test_sql_file_without_a_revision_is_reported(versions: Path) -> None:
    (versions / f"{NEXT}_add_users_nickname.upgrade.sql").write_text(
        "ALTER TABLE users ADD COLUMN nickname text;\n"
    )

    finding = only(validate_migrations(offline=True), "orphan-sql-file")

    assert f"{NEXT}_add_users_nickname.upgrade.sql belongs to no revision" in finding.message


# -- lint ----------------------------------------------------------------------------------


def test_index_without_concurrently_on_existing_table_is_flagged(versions: Path) -> None:
    add_sql_revision(
        versions,
        f"{NEXT}_index_users_display_name",
        HEAD,
        "CREATE INDEX ix_users_display_name ON users (display_name);",
    )

    report = validate_migrations(offline=True)

    finding = only(report, "lint:require-concurrent-index-creation")
    assert finding.revision == NEXT
    assert finding.severity == "error"
    assert f"{NEXT}_index_users_display_name.upgrade.sql:1" in finding.message
    assert "CREATE INDEX ix_users_display_name ON users (display_name);" in finding.message
    assert "concurrently" in finding.how_to_fix
    assert report.exit_code == 1


def test_required_column_and_rewriting_type_change_are_flagged(versions: Path) -> None:
    add_sql_revision(
        versions,
        f"{NEXT}_add_users_nickname",
        HEAD,
        """
        ALTER TABLE users ADD COLUMN nickname text NOT NULL;
        ALTER TABLE items ALTER COLUMN difficulty TYPE numeric(6, 3);
        """,
    )

    report = validate_migrations(offline=True)

    assert {"lint:adding-required-field", "lint:changing-column-type"} <= codes(report)
    assert ":1:" in only(report, "lint:adding-required-field").message
    assert ":2:" in only(report, "lint:changing-column-type").message


def test_safe_forms_of_the_same_changes_pass_lint(versions: Path) -> None:
    add_sql_revision(
        versions,
        f"{NEXT}_add_users_nickname",
        HEAD,
        """
        ALTER TABLE users ADD COLUMN nickname text NOT NULL DEFAULT '';
        ALTER TABLE users ADD COLUMN bio text;
        """,
    )

    assert validate_migrations(offline=True).findings == []


def test_squawk_ignore_comment_waives_one_statement(versions: Path) -> None:
    add_sql_revision(
        versions,
        f"{NEXT}_index_skills_name",
        HEAD,
        """
        -- skills holds a few hundred rows: a plain index build takes milliseconds
        -- squawk-ignore require-concurrent-index-creation
        CREATE INDEX ix_skills_name ON skills (name);
        """,
    )

    assert validate_migrations(offline=True).findings == []


def test_python_revision_is_linted_through_its_offline_sql(versions: Path) -> None:
    add_python_revision(
        versions,
        f"{NEXT}_index_users_display_name",
        HEAD,
        'op.create_index("ix_users_display_name", "users", ["display_name"])',
    )

    finding = only(validate_migrations(offline=True), "lint:require-concurrent-index-creation")

    assert f"{NEXT}_index_users_display_name.py (offline SQL)" in finding.message
    assert "CREATE INDEX ix_users_display_name ON users (display_name)" in finding.message
    assert 'squawk_ignore = ("require-concurrent-index-creation",)' in finding.how_to_fix


def test_concurrent_index_in_autocommit_block_passes_lint(versions: Path) -> None:
    add_python_revision(
        versions,
        f"{NEXT}_index_users_display_name",
        HEAD,
        """
        with op.get_context().autocommit_block():
            op.create_index(
                "ix_users_display_name",
                "users",
                ["display_name"],
                postgresql_concurrently=True,
                if_not_exists=True,
            )
        """,
    )

    assert validate_migrations(offline=True).findings == []


def test_revision_level_squawk_ignore_waives_a_rule(versions: Path) -> None:
    add_python_revision(
        versions,
        f"{NEXT}_add_users_nickname",
        HEAD,
        'op.add_column("users", sa.Column("nickname", sa.Text(), nullable=False))',
    )
    module = versions / f"{NEXT}_add_users_nickname.py"
    module.write_text(
        module.read_text().replace(
            "depends_on = None\n",
            'depends_on = None\n# users is empty until launch\nsquawk_ignore = ("adding-required-field",)\n',
        )
    )

    assert validate_migrations(offline=True).findings == []


# -- the command ---------------------------------------------------------------------------


def test_cli_json_output_parses_and_exits_0_when_clean(db_url: URL) -> None:
    result = CliRunner().invoke(
        main,
        [
            "validate-migrations",
            "--format",
            "json",
            "--database-url",
            db_url.render_as_string(hide_password=False),
        ],
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert data["findings"] == []
    assert data["checked"] == ["files", "lint", "history"]


def test_cli_text_output_names_the_problem_and_exits_1(versions: Path) -> None:
    add_sql_revision(
        versions, f"{NEXT}_add_users_nickname", SHIPPED[-2], "ALTER TABLE users ADD COLUMN nickname text;"
    )

    result = CliRunner().invoke(main, ["validate-migrations", "--offline"])

    assert result.exit_code == 1
    assert f"ERROR [multiple-heads]: 2 heads ({HEAD}, {NEXT})" in result.stdout
    assert "how to fix: renumber the later branch" in result.stdout
    assert "1 error(s), 0 warning(s)" in result.stdout


def test_empty_database_is_consistent_with_any_tree(empty_db_url: URL) -> None:
    report = validate_migrations(empty_db_url)

    assert report.findings == []
    assert report.checked == ["files", "lint", "history"]


def test_database_migrated_without_the_runtime_is_reported(engine: Engine, db_url: URL) -> None:
    execute(engine, "DROP TABLE migration_history")

    finding = only(validate_migrations(db_url), "history-table-missing")

    assert f"alembic_version is at {HEAD} but there is no migration_history table" in finding.message


def test_unparseable_sql_is_reported_once_per_file(versions: Path) -> None:
    add_sql_revision(
        versions, f"{NEXT}_add_users_nickname", HEAD, "ALTER TABLE users ADD COLUM nickname text;"
    )

    finding = only(validate_migrations(offline=True), "lint:syntax-error")

    assert f"{NEXT}_add_users_nickname.upgrade.sql:1" in finding.message
    assert finding.how_to_fix.startswith("fix the SQL")


def test_revision_that_reads_the_database_cannot_render_offline_sql(versions: Path) -> None:
    add_python_revision(
        versions,
        f"{NEXT}_backfill_users_ability",
        HEAD,
        """
        if op.get_bind().execute(sa.text("SELECT count(*) FROM users")).scalar():
            op.execute("UPDATE users SET ability = 0")
        """,
    )

    finding = only(validate_migrations(offline=True), "offline-sql-failed")

    assert finding.severity == "error"
    assert f"{NEXT}_backfill_users_ability.py cannot be rendered as offline SQL" in finding.message
    assert f"alembic upgrade {HEAD}:{NEXT} --sql" in finding.how_to_fix


def test_revision_that_cannot_render_does_not_stop_the_lint_of_later_revisions(versions: Path) -> None:
    add_python_revision(
        versions,
        f"{NEXT}_backfill_users_ability",
        HEAD,
        'op.get_bind().execute(sa.text("SELECT count(*) FROM users")).scalar()',
    )
    add_python_revision(
        versions,
        f"{AFTER_NEXT}_index_users_display_name",
        NEXT,
        'op.create_index("ix_users_display_name", "users", ["display_name"])',
    )

    report = validate_migrations(offline=True)

    assert only(report, "offline-sql-failed").revision == NEXT
    assert only(report, "lint:require-concurrent-index-creation").revision == AFTER_NEXT
    assert AFTER_NEXT in report.linted and NEXT not in report.linted


def test_applied_unchanged_revisions_are_not_linted_again_and_the_output_says_so(
    versions: Path, db_url: URL
) -> None:
    applied = validate_migrations(db_url)
    add_python_revision(
        versions,
        f"{NEXT}_index_users_display_name",
        HEAD,
        'op.create_index("ix_users_display_name", "users", ["display_name"])',
    )

    report = validate_migrations(db_url)

    assert report.linted == [NEXT]
    assert report.lint_unchanged == applied.lint_unchanged
    assert set(report.lint_unchanged) == set(SHIPPED)
    assert only(report, "lint:require-concurrent-index-creation").revision == NEXT
    result = CliRunner().invoke(
        main, ["validate-migrations", "--database-url", db_url.render_as_string(hide_password=False)]
    )
    assert f"linted 1, not re-linted {len(SHIPPED)} applied and unchanged since (checksum): 0001-{HEAD}" in (
        result.stdout
    )


def test_edited_applied_revision_is_linted_again(versions: Path, db_url: URL) -> None:
    sql = versions / f"{SHIPPED_NAMES[HEAD]}.upgrade.sql"
    sql.write_text(sql.read_text() + "CREATE INDEX ix_users_role ON users (role);\n")

    report = validate_migrations(db_url)

    assert HEAD in report.linted
    assert HEAD not in report.lint_unchanged
    assert only(report, "checksum-mismatch").revision == HEAD


# -- names and docstrings ----------------------------------------------------------------------


def head_and_next(versions: Path) -> tuple[str, str]:
    """The tree's head and the id after it (whatever the repository's head is today)."""
    (head,) = find_heads(scan_versions(versions)[0])
    return head, f"{int(head) + 1:04d}"


def test_vague_name_in_an_existing_file_is_flagged(project: ProjectCopy) -> None:
    head, rev = head_and_next(project.versions)
    project.add_revision(rev, "fix_bug", head, 'op.execute("SELECT 1")')

    finding = only(validate_migrations(offline=True), "vague-name")

    assert finding.revision == rev
    assert finding.severity == "warning"
    assert (
        f"{rev}_fix_bug.py: migration name 'fix_bug' does not say what the migration does" in finding.message
    )
    assert "rename it, keeping its number" in finding.how_to_fix


def test_file_without_a_four_digit_id_gets_the_next_free_id_suggested(project: ProjectCopy) -> None:
    head, rev = head_and_next(project.versions)
    path = project.add_revision(rev, "add_users_nickname", head, 'op.execute("SELECT 1")')
    path.write_text(path.read_text().replace(f'revision = "{rev}"', 'revision = "ab85260f2871"'))
    path.rename(project.versions / "ab85260f2871_add_users_nickname.py")

    finding = only(validate_migrations(offline=True), "malformed-file-name")

    assert f"the next free number: {rev}_add_users_nickname.py" in finding.how_to_fix
    assert f'set revision = "{rev}"' in finding.how_to_fix


def test_unfilled_template_placeholder_fails_until_it_is_replaced(project: ProjectCopy) -> None:
    from scripts.migrations.revisions import generate_revision

    path = generate_revision("add_users_nickname")

    report = validate_migrations(offline=True)
    finding = only(report, "placeholder-docstring")
    assert finding.severity == "error"
    assert path.name in finding.message and "What it locks: describe" in finding.message
    assert report.exit_code == 1

    text_now = path.read_text()
    start = text_now.index("What it locks: describe")
    end = text_now.index("how to undo.") + len("how to undo.")
    path.write_text(text_now[:start] + "What it locks: nothing; SELECT 1 reads no table." + text_now[end:])

    assert "placeholder-docstring" not in codes(validate_migrations(offline=True))


def test_the_check_looks_for_placeholders_the_template_has() -> None:
    template = (REPO_ROOT / "alembic" / "script.py.mako").read_text()
    for placeholder in TEMPLATE_PLACEHOLDERS:
        assert placeholder in " ".join(template.split()), placeholder
