"""The schema-diff validator: clean at head, every kind of drift named, exit codes, autogenerate."""

from __future__ import annotations

import datetime as dt
import gc
import json
from pathlib import Path

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import CheckConstraint, Column, Index, Integer, MetaData, text
from sqlalchemy.dialects.postgresql import ENUM
from sqlalchemy.engine import URL

from models import metadata
from models.base import NAMING_CONVENTION
from scripts.cli import main
from scripts.db.engine import make_engine
from scripts.migrations import api as migrations
from scripts.schema_diff import validate_schema
from scripts.schema_diff.catalog import open_schema
from scripts.schema_diff.normalise import normalise_views, scratch
from scripts.schema_diff.owned import capture
from scripts.schema_diff.owned_objects import MIGRATION_OWNED
from scripts.schema_diff.report import render_text
from tests.project import HEAD, NEXT

ON_HEAD_DAY = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)  # inside revision 0001's partitions


def run_sql(url: URL, *statements: str) -> None:
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def url_text(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def test_schema_is_clean_right_after_head(db_url):
    report = validate_schema(db_url, now=ON_HEAD_DAY)
    assert report.findings == [], render_text(report)
    assert not report.drift
    assert report.tables_checked == 7  # migration_history is the runtime's, not the models'


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_paused_while_comparing_and_left_as_found(db_url, monkeypatch, enabled):
    # A full collection walks every object in the process (0.2 s with 1,000 models): the
    # comparison allocates without making garbage, so it pauses the collector.
    import scripts.schema_diff.validate as validate

    seen: list[bool] = []
    read_catalog = validate.read_catalog

    def reading(*args, **kwargs):
        seen.append(gc.isenabled())
        return read_catalog(*args, **kwargs)

    monkeypatch.setattr(validate, "read_catalog", reading)
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        validate_schema(db_url, now=ON_HEAD_DAY)
        assert seen == [False]
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


DRIFT = {
    "dropped_index": (["DROP INDEX ix_skills_parent_id"], "index", "skills.ix_skills_parent_id"),
    "changed_index_predicate": (
        [
            "DROP INDEX ix_items_active_difficulty",
            "CREATE INDEX ix_items_active_difficulty ON items (difficulty) WHERE status = 'draft'",
        ],
        "index",
        "items.ix_items_active_difficulty",
    ),
    "added_column": (["ALTER TABLE users ADD COLUMN nickname text"], "column", "users.nickname"),
    "changed_column_type": (["ALTER TABLE skills ALTER COLUMN name TYPE text"], "column type", "skills.name"),
    "dropped_not_null": (
        ["ALTER TABLE items ALTER COLUMN stem DROP NOT NULL"],
        "column nullability",
        "items.stem",
    ),
    "changed_server_default": (
        ["ALTER TABLE items ALTER COLUMN difficulty SET DEFAULT 1"],
        "column server default",
        "items.difficulty",
    ),
    "changed_check": (
        [
            "ALTER TABLE items DROP CONSTRAINT ck_items_difficulty_range,"
            " ADD CONSTRAINT ck_items_difficulty_range CHECK (difficulty BETWEEN -4 AND 4)"
        ],
        "check constraint",
        "items.ck_items_difficulty_range",
    ),
    "dropped_check": (
        ["ALTER TABLE items DROP CONSTRAINT ck_items_guessing_range"],
        "check constraint",
        "items.ck_items_guessing_range",
    ),
    "dropped_foreign_key": (
        ["ALTER TABLE items DROP CONSTRAINT fk_items_created_by_users"],
        "foreign key",
        "items.fk_items_created_by_users",
    ),
    "enum_value_added": (["ALTER TYPE item_status ADD VALUE 'archived'"], "enum type", "item_status"),
    "dropped_trigger": (
        ["DROP TRIGGER trg_users_set_updated_at ON users"],
        "trigger",
        "users.trg_users_set_updated_at",
    ),
    "replaced_view": (
        [
            "CREATE OR REPLACE VIEW index_usage AS SELECT s.schemaname AS schema_name,"
            " s.relname AS table_name, s.indexrelname AS index_name, s.idx_scan, s.idx_tup_read,"
            " s.idx_tup_fetch, 0::bigint AS index_bytes, ''::text AS index_size, true AS is_unique,"
            " false AS is_primary FROM pg_stat_user_indexes s"
        ],
        "view",
        "index_usage",
    ),
    "detached_default_partition": (
        ["ALTER TABLE attempts DETACH PARTITION attempts_default"],
        "default partition",
        "attempts.attempts_default",
    ),
}


@pytest.mark.parametrize("case", list(DRIFT))
def test_drift_is_detected_and_the_object_named(db_url, case):
    statements, kind, obj = DRIFT[case]
    run_sql(db_url, *statements)
    report = validate_schema(db_url, now=ON_HEAD_DAY)
    assert report.drift, f"{case} went unnoticed"
    named = [(f.kind, f.object) for f in report.errors]
    assert named == [(kind, obj)], render_text(report)
    assert obj in render_text(report)


def test_recorded_revision_objects_match_a_database_at_head(db_url):
    """owned_objects.py must follow the revisions; regenerate it when one changes."""
    regenerate = "regenerate: alp-db record-owned --database-url URL > scripts/schema_diff/owned_objects.py"
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            captured = capture(conn, migrations.versions_dir(), open_schema(conn, "public"))
            with scratch(conn):
                recorded_views = normalise_views(conn, MIGRATION_OWNED.views)
    finally:
        engine.dispose()
    assert captured.functions == MIGRATION_OWNED.functions, regenerate
    assert captured.triggers == MIGRATION_OWNED.triggers, regenerate
    assert captured.default_partitions == MIGRATION_OWNED.default_partitions, regenerate
    assert captured.sources == MIGRATION_OWNED.sources, regenerate
    assert (captured.extensions, captured.schemas) == (MIGRATION_OWNED.extensions, MIGRATION_OWNED.schemas)
    assert (captured.privileges, captured.owners) == (MIGRATION_OWNED.privileges, MIGRATION_OWNED.owners)
    assert (captured.row_security, captured.policies) == (
        MIGRATION_OWNED.row_security,
        MIGRATION_OWNED.policies,
    ), regenerate
    assert recorded_views == captured.views, regenerate


def test_changed_check_reports_both_definitions_as_the_server_prints_them(db_url):
    run_sql(db_url, *DRIFT["changed_check"][0])
    [finding] = validate_schema(db_url, now=ON_HEAD_DAY).findings
    assert "'-5'::integer" in finding.expected and "(5)::double precision" in finding.expected
    assert "'-4'::integer" in finding.actual and "(4)::double precision" in finding.actual


def test_same_meaning_spelled_differently_is_not_drift(db_url):
    run_sql(
        db_url,
        "ALTER TABLE items DROP CONSTRAINT ck_items_discrimination_range, ADD CONSTRAINT"
        " ck_items_discrimination_range CHECK ((discrimination > 0) and (DISCRIMINATION <= 4))",
        "DROP INDEX ix_items_active_difficulty",
        "CREATE INDEX ix_items_active_difficulty ON items USING btree (difficulty) WHERE (status = 'active')",
        "ALTER TABLE users ALTER COLUMN role SET DEFAULT 'learner'::user_role",
    )
    report = validate_schema(db_url, now=ON_HEAD_DAY)
    assert report.findings == [], render_text(report)


def test_new_partitions_are_not_drift(db_url):
    run_sql(
        db_url,
        "CREATE TABLE attempts_2028 PARTITION OF attempts"
        " FOR VALUES FROM ('2028-01-01 00:00:00+00') TO ('2029-01-01 00:00:00+00')",
    )
    assert validate_schema(db_url, now=ON_HEAD_DAY).findings == []


def test_missing_next_partition_is_a_warning_not_drift(db_url):
    report = validate_schema(db_url, now=dt.datetime(2027, 3, 1, tzinfo=dt.timezone.utc))
    assert not report.drift
    [warning] = report.warnings
    assert (warning.kind, warning.object) == ("partition", "attempts (next period)")
    assert "2028-01-01" in warning.expected
    assert "partitions ensure" in warning.how_to_fix


def test_missing_current_partition_is_drift_its_rows_land_in_the_default_partition(db_url):
    report = validate_schema(db_url, now=dt.datetime(2031, 3, 1, tzinfo=dt.timezone.utc))
    assert [(f.kind, f.object) for f in report.errors] == [("partition", "attempts (current period)")]
    assert "attempts_default" in report.errors[0].actual
    assert report.warnings == []  # the next period is not reported while the current one is missing


def test_cli_text_report_has_expected_actual_how_to_fix_and_exit_1(db_url):
    run_sql(db_url, "DROP INDEX ix_skills_parent_id")
    result = CliRunner().invoke(main, ["validate-schema", "--database-url", url_text(db_url)])
    assert result.exit_code == 1, result.output
    assert "ERROR: index skills.ix_skills_parent_id" in result.stdout
    for label in ("EXPECTED:", "ACTUAL:", "HOW TO FIX:"):
        assert label in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("DRIFT: 1 difference(s)")


def test_cli_json_lists_the_same_findings(db_url):
    run_sql(db_url, *DRIFT["dropped_foreign_key"][0], *DRIFT["dropped_trigger"][0])
    expected = validate_schema(db_url)
    result = CliRunner().invoke(
        main, ["validate-schema", "--database-url", url_text(db_url), "--format", "json"]
    )
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["drift"] is True
    assert data["findings"] == [f.as_json() for f in expected.findings]
    assert {(f["kind"], f["object"]) for f in data["findings"]} >= {
        ("foreign key", "items.fk_items_created_by_users"),
        ("trigger", "users.trg_users_set_updated_at"),
    }


def test_cli_exits_0_when_clean(db_url):
    result = CliRunner().invoke(main, ["validate-schema", "--database-url", url_text(db_url)])
    assert result.exit_code == 0, result.output
    assert "schema matches the models: 7 tables checked" in result.stdout


@pytest.fixture
def limited_role(db_url: URL, make_role) -> URL:  # type: ignore[no-untyped-def]
    """A login role on the test database, dropped afterwards."""
    return db_url.set(username=make_role("alp_limited", db_url, password="limited-pw"), password="limited-pw")


def test_role_that_may_not_connect_gets_exit_2_and_one_clear_line(db_url, limited_role):
    prep = make_engine(db_url).dialect.identifier_preparer
    run_sql(db_url, f"REVOKE CONNECT ON DATABASE {prep.quote(str(db_url.database))} FROM PUBLIC")
    result = CliRunner().invoke(main, ["validate-schema", "--database-url", url_text(limited_role)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("alp-db: error: permission denied connecting to")
    assert "limited-pw" not in result.stderr


def test_role_without_temporary_right_gets_exit_2_naming_the_privilege(db_url, limited_role):
    prep = make_engine(db_url).dialect.identifier_preparer
    run_sql(db_url, f"REVOKE TEMPORARY ON DATABASE {prep.quote(str(db_url.database))} FROM PUBLIC")
    result = CliRunner().invoke(main, ["validate-schema", "--database-url", url_text(limited_role)])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert "cannot check the schema" in line and "may not read it" in line
    assert "temporary" in line.lower()


# -- autogenerate ---------------------------------------------------------------------------


def changed_models() -> MetaData:
    """The models plus a column with a CHECK and an index on items, and an item_status value."""
    changed = MetaData(naming_convention=NAMING_CONVENTION)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    items = changed.tables["items"]
    items.append_column(Column("exposure_count", Integer, nullable=False, server_default=text("0")))
    items.append_constraint(CheckConstraint("exposure_count >= 0", name="exposure_non_negative"))
    Index("ix_items_exposure_count", items.c.exposure_count)
    items.c.status.type = ENUM(
        "draft", "active", "retired", "archived", name="item_status", create_type=False
    )
    return changed


def autogenerate(
    url: URL, directory: Path, message: str, models: MetaData | None = None
) -> tuple[str, object]:
    """``alembic revision --autogenerate`` into ``directory`` (beside the real versions)."""
    config = migrations.alembic_config(url)
    if models is not None:
        config.attributes["target_metadata"] = models
    config.set_main_option("version_locations", f"{migrations.versions_dir()}:{directory}")
    command.revision(config, message=message, autogenerate=True, rev_id=NEXT, version_path=str(directory))
    [path] = directory.glob(f"{NEXT}_*.py")
    return path.read_text(), config


def test_autogenerate_right_after_head_is_empty(db_url, tmp_path):
    source, _ = autogenerate(db_url, tmp_path, "nothing_changed")
    upgrade = source.split("def upgrade() -> None:", 1)[1].split("def downgrade", 1)[0]
    assert upgrade.split("###")[0].strip() in ("pass", "#"), upgrade
    assert "op." not in upgrade


def test_autogenerate_sees_column_check_index_and_enum_value_then_validator_is_clean(db_url, tmp_path):
    changed = changed_models()
    before = validate_schema(db_url, changed, now=ON_HEAD_DAY)
    assert {(f.kind, f.object) for f in before.errors} == {
        ("column", "items.exposure_count"),
        ("check constraint", "items.ck_items_exposure_non_negative"),
        ("index", "items.ix_items_exposure_count"),
        ("enum type", "item_status"),
    }
    source, config = autogenerate(db_url, tmp_path, "add_item_exposure_count", changed)
    assert '"items", sa.Column("exposure_count", sa.Integer()' in source
    assert 'op.f("ck_items_exposure_non_negative"), "items", "exposure_count >= 0"' in source
    assert '"ix_items_exposure_count",\n            "items",\n            ["exposure_count"]' in source
    assert "ADD VALUE IF NOT EXISTS 'archived' AFTER 'retired'" in source
    command.upgrade(config, "head")  # type: ignore[arg-type]
    after = validate_schema(db_url, changed, now=ON_HEAD_DAY)
    assert after.findings == [], render_text(after)


def models_with_changed_meaning() -> MetaData:
    """The models with a tighter difficulty CHECK and another predicate on the active-items index."""
    changed = MetaData(naming_convention=NAMING_CONVENTION)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    items = changed.tables["items"]
    [check] = [c for c in items.constraints if c.name == "ck_items_difficulty_range"]
    items.constraints.remove(check)
    items.append_constraint(CheckConstraint("difficulty BETWEEN -4 AND 4", name="difficulty_range"))
    [index] = [i for i in items.indexes if i.name == "ix_items_active_difficulty"]
    index.dialect_options["postgresql"]["where"] = text("status = 'draft'::item_status")
    return changed


def test_autogenerate_sees_changed_check_and_index_predicate_and_downgrade_restores_them(db_url, tmp_path):
    changed = models_with_changed_meaning()
    source, config = autogenerate(db_url, tmp_path, "tighten_item_difficulty", changed)
    upgrade = source.split("def downgrade", 1)[0]
    assert 'op.drop_constraint(op.f("ck_items_difficulty_range"), "items", type_="check")' in upgrade
    assert '"difficulty BETWEEN -4 AND 4"' in upgrade
    assert 'op.f("ix_items_active_difficulty")' in upgrade
    assert "postgresql_where=sa.text(\"status = 'draft'::item_status\")" in upgrade
    command.upgrade(config, "head")  # type: ignore[arg-type]
    assert validate_schema(db_url, changed, now=ON_HEAD_DAY).findings == []
    command.downgrade(config, HEAD)  # type: ignore[arg-type]
    report = validate_schema(db_url, now=ON_HEAD_DAY)
    assert report.findings == [], render_text(report)


def test_detached_period_partition_kept_as_a_table_is_a_warning(db_url):
    run_sql(db_url, "ALTER TABLE attempts DETACH PARTITION attempts_2024")
    report = validate_schema(db_url, now=ON_HEAD_DAY)
    assert not report.drift, render_text(report)
    assert [(w.kind, w.object) for w in report.warnings] == [("detached partition", "attempts_2024")]


def test_autogenerate_leaves_index_column_changes_to_alembic_without_duplicates(db_url, tmp_path):
    changed = MetaData(naming_convention=NAMING_CONVENTION)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    skills = changed.tables["skills"]
    [index] = [i for i in skills.indexes if i.name == "ix_skills_parent_id"]
    skills.indexes.remove(index)
    Index("ix_skills_parent_id", skills.c.parent_id, skills.c.code)
    source, config = autogenerate(db_url, tmp_path, "widen_skill_parent_index", changed)
    upgrade = source.split("def downgrade", 1)[0]
    # one drop of the old index, one re-run guard (drop if a failed build left it), one create
    assert upgrade.count("drop_index(") == 2 and upgrade.count("create_index(") == 1, upgrade
    command.upgrade(config, "head")  # type: ignore[arg-type]
    assert validate_schema(db_url, changed, now=ON_HEAD_DAY).findings == []


def test_a_database_behind_head_gets_a_warning_saying_so(db_url):
    from scripts.migrations import api as migrations

    migrations.downgrade(db_url, "0003")
    report = validate_schema(db_url)
    warning = next(w for w in report.warnings if w.kind == "revision")
    assert (warning.expected, warning.actual) == (f"at head {HEAD}", "at 0003")
    assert report.drift  # the views of 0004 are missing: real differences, explained by the warning


def test_a_never_migrated_database_says_so(empty_db_url):
    report = validate_schema(empty_db_url)
    assert any(w.kind == "revision" and "never migrated" in w.actual for w in report.warnings)


def test_partition_without_the_statement_check_that_replaced_its_row_clone_is_drift(db_url):
    """0005 disables each partition's row clone of the active-item check only because the
    partition runs the check per statement: without that trigger, the disabled clone is drift."""
    assert validate_schema(db_url, now=ON_HEAD_DAY).findings == []
    run_sql(db_url, "DROP TRIGGER trg_attempts_require_active_items ON attempts_2026")
    report = validate_schema(db_url, now=ON_HEAD_DAY)
    assert [f.object for f in report.findings] == ["attempts_2026.trg_attempts_require_active_item"]
