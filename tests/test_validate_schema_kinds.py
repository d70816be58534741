"""validate-schema sees each kind of drift an independent schema-diff tool sees, alone on a
fresh copy of a database at head, and none of the changes that are not drift."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from scripts.cli import main
from scripts.db.engine import make_engine
from scripts.schema_diff import validate_schema
from scripts.schema_diff.report import render_text
from tests.test_validate_schema import ON_HEAD_DAY, run_sql, url_text

NULLS_NOT_DISTINCT_MIN_VERSION = 150000

# (case, statements, finding kind, object named): each applied alone must exit 1 naming the object.
KINDS = [
    (
        "fk_deferrable",
        ["ALTER TABLE items ALTER CONSTRAINT fk_items_created_by_users DEFERRABLE INITIALLY DEFERRED"],
        "foreign key",
        "items.fk_items_created_by_users",
    ),
    (
        "fk_not_valid",
        [
            "ALTER TABLE items DROP CONSTRAINT fk_items_created_by_users, ADD CONSTRAINT"
            " fk_items_created_by_users FOREIGN KEY (created_by) REFERENCES users (id) ON DELETE SET NULL"
            " NOT VALID"
        ],
        "foreign key",
        "items.fk_items_created_by_users",
    ),
    (
        "unique_deferrable",
        [
            "ALTER TABLE skills DROP CONSTRAINT uq_skills_code,"
            " ADD CONSTRAINT uq_skills_code UNIQUE (code) DEFERRABLE"
        ],
        "unique constraint",
        "skills.uq_skills_code",
    ),
    (
        "nulls_not_distinct",
        [
            "DROP INDEX uq_users_email_lower",
            "CREATE UNIQUE INDEX uq_users_email_lower ON users (lower(email)) NULLS NOT DISTINCT",
        ],
        "index",
        "users.uq_users_email_lower",
    ),
    (
        "generated_column",
        [
            "ALTER TABLE skills DROP COLUMN name,"
            " ADD COLUMN name varchar(200) NOT NULL GENERATED ALWAYS AS (lower(code)) STORED"
        ],
        "column generation",
        "skills.name",
    ),
    (
        "partition_index_not_attached",
        [
            "DROP INDEX ix_attempts_session_id",
            "CREATE INDEX ix_attempts_session_id ON ONLY attempts (session_id)",
        ],
        "partition index",
        "attempts.ix_attempts_session_id",
    ),
    (
        "partition_wrong_bounds",
        [
            "ALTER TABLE attempts DETACH PARTITION attempts_2024",
            "ALTER TABLE attempts ATTACH PARTITION attempts_2024"
            " FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-07-01 00:00:00+00')",
        ],
        "partition bounds",
        "attempts.attempts_2024",
    ),
    (
        "current_partition_detached",
        ["ALTER TABLE attempts DETACH PARTITION attempts_2026"],
        "partition",
        "attempts (current period)",
    ),
    (
        "cloned_trigger_disabled_on_one_partition",
        ["ALTER TABLE attempts_2026 DISABLE TRIGGER trg_attempts_append_only"],
        "trigger",
        "attempts_2026.trg_attempts_append_only",
    ),
    ("unlogged", ["ALTER TABLE skill_mastery SET UNLOGGED"], "table persistence", "skill_mastery"),
    (
        "storage_parameters",
        ["ALTER TABLE items SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01)"],
        "storage parameters",
        "items",
    ),
    ("row_level_security", ["ALTER TABLE users ENABLE ROW LEVEL SECURITY"], "row-level security", "users"),
    ("policy", ["CREATE POLICY own_rows ON users USING (true)"], "policy", "users.own_rows"),
    ("grant_to_public", ["GRANT SELECT ON items TO PUBLIC"], "privileges", "items"),
    (
        "security_definer",
        ["ALTER FUNCTION set_updated_at() SECURITY DEFINER"],
        "function attributes",
        "set_updated_at()",
    ),
    (
        "function_set_search_path",
        ["ALTER FUNCTION set_updated_at() SET search_path = public"],
        "function attributes",
        "set_updated_at()",
    ),
    (
        "function_volatility",
        ["ALTER FUNCTION set_updated_at() STABLE"],
        "function attributes",
        "set_updated_at()",
    ),
    (
        "index_opclass",
        [
            "DROP INDEX uq_users_email_lower",
            "CREATE UNIQUE INDEX uq_users_email_lower ON users (lower(email) text_pattern_ops)",
        ],
        "index",
        "users.uq_users_email_lower",
    ),
    (
        "index_collation",
        [
            "DROP INDEX uq_users_email_lower",
            'CREATE UNIQUE INDEX uq_users_email_lower ON users (lower(email) COLLATE "C")',
        ],
        "index",
        "users.uq_users_email_lower",
    ),
    (
        "column_collation",
        ['ALTER TABLE skills ALTER COLUMN name TYPE varchar(200) COLLATE "C"'],
        "column collation",
        "skills.name",
    ),
    ("extension", ["CREATE EXTENSION pg_trgm"], "extension", "pg_trgm"),
    (
        "schema_with_a_table",
        ["CREATE SCHEMA reporting", "CREATE TABLE reporting.t (id int)"],
        "schema",
        "reporting",
    ),
    ("column_comment", ["COMMENT ON COLUMN items.stem IS 'the question'"], "column comment", "items.stem"),
]
NEEDS_PG15 = {"nulls_not_distinct"}


def server_version(url: URL) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize(("case", "statements", "kind", "obj"), KINDS, ids=[k[0] for k in KINDS])
def test_each_kind_of_drift_alone_is_found_and_named(db_url, case, statements, kind, obj):
    if case in NEEDS_PG15 and server_version(db_url) < NULLS_NOT_DISTINCT_MIN_VERSION:
        pytest.skip("NULLS NOT DISTINCT needs PostgreSQL 15")
    run_sql(db_url, *statements)
    report = validate_schema(db_url, now=ON_HEAD_DAY)
    assert report.drift, f"{case} went unnoticed"
    assert (kind, obj) in {(f.kind, f.object) for f in report.errors}, render_text(report)
    finding = next(f for f in report.errors if (f.kind, f.object) == (kind, obj))
    assert finding.expected and finding.actual and finding.how_to_fix
    assert finding.expected != finding.actual


def test_owner_changed_by_hand_is_drift_and_ignorable(db_url, make_role):
    role = make_role("alp_owner", db_url)
    prep = make_engine(db_url).dialect.identifier_preparer
    run_sql(db_url, f"ALTER TABLE skills OWNER TO {prep.quote(role)}")
    report = validate_schema(db_url, now=ON_HEAD_DAY)
    [owner] = [f for f in report.errors if f.kind == "owner"]
    assert owner.object == "skills" and owner.actual == role
    assert "OWNER TO" in owner.how_to_fix
    assert validate_schema(db_url, now=ON_HEAD_DAY, ignore=["owner"]).findings == []


def test_ignore_privileges_and_owner_on_the_command_line(db_url, make_role):
    role = make_role("alp_reader", db_url)
    prep = make_engine(db_url).dialect.identifier_preparer
    run_sql(
        db_url,
        f"GRANT SELECT ON items TO {prep.quote(role)}",
        f"ALTER TABLE skills OWNER TO {prep.quote(role)}",
    )
    base = ["validate-schema", "--database-url", url_text(db_url)]
    assert CliRunner().invoke(main, base).exit_code == 1
    result = CliRunner().invoke(main, [*base, "--ignore", "privileges,owner"])
    assert result.exit_code == 0, result.output
    assert "privileges" not in result.output.split("schema matches")[0]


def test_ignore_refuses_an_unknown_aspect(db_url):
    result = CliRunner().invoke(
        main, ["validate-schema", "--database-url", url_text(db_url), "--ignore", "grants"]
    )
    assert result.exit_code == 2
    assert "cannot ignore grants" in result.output


def test_grant_finding_says_the_revoke_that_fixes_it(db_url):
    run_sql(db_url, "GRANT SELECT ON items TO PUBLIC")
    [finding] = validate_schema(db_url, now=ON_HEAD_DAY).errors
    assert finding.actual.count("PUBLIC:SELECT") == 1
    assert "REVOKE SELECT ON items FROM PUBLIC" in finding.how_to_fix


def test_database_search_path_putting_another_schema_first_is_not_drift(db_url):
    prep = make_engine(db_url).dialect.identifier_preparer
    run_sql(
        db_url,
        "CREATE SCHEMA reporting",
        f"ALTER DATABASE {prep.quote(str(db_url.database))} SET search_path = reporting, public",
    )
    report = validate_schema(db_url, now=ON_HEAD_DAY)
    assert not report.drift, render_text(report)
    assert report.tables_checked == 7


def test_user_schema_named_after_the_role_is_not_drift(db_url):
    prep = make_engine(db_url).dialect.identifier_preparer
    run_sql(db_url, f"CREATE SCHEMA {prep.quote(str(db_url.username))}")
    report = validate_schema(db_url, now=ON_HEAD_DAY)
    assert not report.drift, render_text(report)


def test_default_rewritten_as_the_same_value_is_not_drift(db_url):
    run_sql(db_url, "ALTER TABLE items ALTER COLUMN difficulty SET DEFAULT 0.0")
    report = validate_schema(db_url, now=ON_HEAD_DAY)
    assert report.findings == [], render_text(report)


def test_default_with_another_value_is_still_drift(db_url):
    run_sql(db_url, "ALTER TABLE items ALTER COLUMN difficulty SET DEFAULT 0.5")
    assert {(f.kind, f.object) for f in validate_schema(db_url, now=ON_HEAD_DAY).errors} == {
        ("column server default", "items.difficulty")
    }


def test_clean_after_seed_and_after_partitions_ensure(db_url):
    cli = CliRunner()
    url = url_text(db_url)
    seeded = cli.invoke(main, ["seed", "--database-url", url, "--scale", "small"])
    assert seeded.exit_code == 0, seeded.output
    assert validate_schema(db_url).findings == [], render_text(validate_schema(db_url))
    ensured = cli.invoke(main, ["partitions", "ensure", "--database-url", url, "--ahead", "3"])
    assert ensured.exit_code == 0, ensured.output
    report = validate_schema(db_url)
    assert report.findings == [], render_text(report)
    assert cli.invoke(main, ["validate-schema", "--database-url", url]).exit_code == 0
