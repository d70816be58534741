"""Invariants of the revision history: head, single head, step-by-step reversibility, no trace."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL

from scripts.db.engine import make_engine
from scripts.migrations import api as migrations
from tests.project import HEAD, SHIPPED

REVISIONS = SHIPPED


def current_revision(url: URL) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        engine.dispose()


def user_objects(url: URL) -> set[str]:
    """Every relation, type and function in public, except those the runtime owns."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rels = conn.scalars(
                text(
                    "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'public' AND c.relkind IN ('r','p','v','m','i','I','S')"
                    " AND c.relname NOT IN ('alembic_version', 'migration_history')"
                    " AND c.oid NOT IN (SELECT indexrelid FROM pg_index WHERE indrelid IN"
                    " (to_regclass('alembic_version'), to_regclass('migration_history')))"
                    " AND c.oid NOT IN (SELECT objid FROM pg_depend WHERE refobjid ="
                    " to_regclass('migration_history') AND deptype IN ('a', 'i'))"
                )
            ).all()
            types = conn.scalars(
                text(
                    "SELECT typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
                    " WHERE n.nspname = 'public' AND t.typtype = 'e'"
                )
            ).all()
            funcs = conn.scalars(
                text(
                    "SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                    " WHERE n.nspname = 'public'"
                )
            ).all()
    finally:
        engine.dispose()
    return {*rels, *types, *funcs}


def test_upgrade_from_empty_reaches_head(empty_db_url):
    migrations.upgrade(empty_db_url)
    assert current_revision(empty_db_url) == HEAD
    assert {"users", "items", "attempts", "attempts_default", "table_sizes"} <= user_objects(empty_db_url)


def test_history_has_a_single_head_and_revisions_numbered_from_0001_without_gaps():
    script = ScriptDirectory.from_config(migrations.alembic_config())
    assert script.get_heads() == [HEAD]
    chain = [rev.revision for rev in script.walk_revisions("base", "heads")]
    assert list(reversed(chain)) == REVISIONS == [f"{n:04d}" for n in range(1, len(REVISIONS) + 1)]
    for rev in script.walk_revisions():
        assert rev.path.endswith(f"{rev.revision}_{rev.path.split(rev.revision + '_', 1)[1]}")


def test_each_revision_downgrades_and_upgrades_again_step_by_step(empty_db_url):
    for index, revision in enumerate(REVISIONS):
        migrations.upgrade(empty_db_url, revision)
        assert current_revision(empty_db_url) == revision
        migrations.downgrade(empty_db_url, "-1")
        assert current_revision(empty_db_url) == (REVISIONS[index - 1] if index else None)
        migrations.upgrade(empty_db_url, revision)
        assert current_revision(empty_db_url) == revision


def test_each_downgrade_restores_the_schema_of_the_revision_before(pg_server, empty_db_url):
    """pg_dump -s after upgrade + downgrade equals pg_dump -s before: triggers (enabled or not,
    per partition), functions and all, so a downgrade mirrors its upgrade exactly."""
    migrations.upgrade(empty_db_url, REVISIONS[0])
    for revision in REVISIONS[1:]:
        before = pg_server.pg_dump_schema(empty_db_url)
        migrations.upgrade(empty_db_url, revision)
        migrations.downgrade(empty_db_url, "-1")
        assert pg_server.pg_dump_schema(empty_db_url) == before, revision
        migrations.upgrade(empty_db_url, revision)


def test_upgrade_downgrade_base_upgrade_leaves_no_trace(pg_server, empty_db_url):
    migrations.upgrade(empty_db_url)
    first = pg_server.pg_dump_schema(empty_db_url)
    migrations.downgrade(empty_db_url, "base")
    assert user_objects(empty_db_url) == set()
    migrations.upgrade(empty_db_url)
    assert pg_server.pg_dump_schema(empty_db_url) == first


def test_offline_sql_builds_the_same_schema_as_online(pg_server, db_url, empty_db_url, tmp_path):
    script = tmp_path / "upgrade.sql"
    with script.open("w") as out:
        migrations.upgrade(None, "head", sql=True, output=out)
    result = pg_server.psql(empty_db_url, "-v", "ON_ERROR_STOP=1", "-f", str(script))
    assert result.returncode == 0, result.stderr
    assert pg_server.pg_dump_schema(empty_db_url) == pg_server.pg_dump_schema(db_url)
    assert current_revision(empty_db_url) == HEAD


def test_offline_sql_records_each_revision_in_migration_history(pg_server, empty_db_url, tmp_path):
    script = tmp_path / "upgrade.sql"
    with script.open("w") as out:
        migrations.upgrade(None, "head", sql=True, output=out)
    assert pg_server.psql(empty_db_url, "-v", "ON_ERROR_STOP=1", "-f", str(script)).returncode == 0
    engine = make_engine(empty_db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT revision, direction, success FROM migration_history ORDER BY id")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [(rev, "upgrade", True) for rev in REVISIONS]


def test_alembic_check_reports_no_change_after_head(db_url):
    config = migrations.alembic_config(db_url)
    command.check(config)  # raises AutogenerateDiffsDetected on any difference


def test_a_handed_in_connection_is_used_instead_of_a_new_one(empty_db_url):
    engine = make_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            config = migrations.alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
            conn.commit()
            assert conn.scalar(text("SELECT version_num FROM alembic_version")) == "0001"
    finally:
        engine.dispose()
    assert current_revision(empty_db_url) == "0001"
