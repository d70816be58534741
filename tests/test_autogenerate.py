"""Autogenerate writes revisions that pass every check of the project, for each kind of change.

Each case, in a temporary project at the repository's head (whatever it is): a model change
-> ``alembic revision --autogenerate`` -> the file passes ruff check, ruff format --check and
validate-migrations with no waiver added by hand -> upgrade -> ``alembic check`` and
validate-schema clean -> upgrade, downgrade, upgrade leaves the same schema (pg_dump -s)
-> the offline SQL, applied with psql, gives the same schema as the online run.
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import (
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    MetaData,
    String,
    Table,
    text,
)
from sqlalchemy.dialects.postgresql import ENUM, UUID
from sqlalchemy.engine import URL

from models import metadata
from models.base import NAMING_CONVENTION
from scripts.checks.report import validate_migrations
from scripts.db.engine import make_engine
from scripts.errors import MigrationFailed
from scripts.migrations import api as migrations
from scripts.schema_diff import validate_schema
from scripts.schema_diff.report import render_text
from tests.conftest import PgServer
from tests.factories import make_item, make_user
from tests.project import ProjectCopy

ON_HEAD_DAY = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)  # inside revision 0001's partitions


def copy_of_models() -> MetaData:
    changed = MetaData(naming_convention=NAMING_CONVENTION)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    return changed


def index_on_existing_table(m: MetaData) -> None:
    Index("ix_items_stem", m.tables["items"].c.stem)


def index_on_partitioned_table(m: MetaData) -> None:
    Index("ix_attempts_score", m.tables["attempts"].c.score)


def new_table_with_index(m: MetaData) -> None:
    """The guide's user_preferences table, referencing users."""
    prefs = Table(
        "user_preferences",
        m,
        Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
        Column("user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        Column("preference_key", String(100), nullable=False),
    )
    Index("ix_user_preferences_preference_key", prefs.c.preference_key)


def foreign_key_on_existing_table(m: MetaData) -> None:
    items = m.tables["items"]
    items.append_column(Column("reviewed_by", UUID(as_uuid=True), nullable=True))
    items.append_constraint(ForeignKeyConstraint(["reviewed_by"], ["users.id"], ondelete="SET NULL"))


def not_null_on_existing_column(m: MetaData) -> None:
    m.tables["items"].c.created_by.nullable = False


def enum_value_in_the_middle(m: MetaData) -> None:
    """A value between two others: ADD VALUE ... AFTER its predecessor in the model."""
    m.tables["items"].c.status.type = ENUM(
        "draft", "in_review", "active", "retired", name="item_status", create_type=False
    )


def rewriting_type_change(m: MetaData) -> None:
    m.tables["items"].c.stem.type = String(4000)


def dropped_column(m: MetaData) -> None:
    sessions = m.tables["learning_sessions"]
    [check] = [c for c in sessions.constraints if c.name == "ck_learning_sessions_ends_after_start"]
    sessions.constraints.remove(check)
    sessions._columns.remove(sessions.c.ended_at)


CHANGES: dict[str, tuple[Callable[[MetaData], None], list[str], list[str]]] = {
    # name: (model change, must appear in the revision, must appear in its offline upgrade SQL)
    "index_items_stem": (
        index_on_existing_table,
        ["postgresql_concurrently=True", "autocommit_block()"],
        ["CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_items_stem ON items (stem)"],
    ),
    "index_attempts_score": (
        index_on_partitioned_table,
        ['create_partitioned_index_concurrently(op, "ix_attempts_score"', 'table="attempts"'],
        ["ix_attempts_score ON ONLY", "\\gexec"],
    ),
    "add_user_preferences_table": (
        new_table_with_index,
        ["op.create_table(", "op.create_index(\n"],
        ["CREATE INDEX ix_user_preferences_preference_key ON user_preferences (preference_key)"],
    ),
    "add_items_reviewed_by": (
        foreign_key_on_existing_table,
        ["postgresql_not_valid=True", "VALIDATE CONSTRAINT fk_items_reviewed_by_users"],
        ["NOT VALID", "ALTER TABLE items VALIDATE CONSTRAINT fk_items_reviewed_by_users"],
    ),
    "require_items_created_by": (
        not_null_on_existing_column,
        ["created_by IS NOT NULL", "nullable=False"],
        [
            "CHECK (created_by IS NOT NULL) NOT VALID",
            "ALTER TABLE items VALIDATE CONSTRAINT ck_items_created_by_not_null",
            "ALTER TABLE items ALTER COLUMN created_by SET NOT NULL",
            "ALTER TABLE items DROP CONSTRAINT ck_items_created_by_not_null",
        ],
    ),
    "add_item_status_in_review": (
        enum_value_in_the_middle,
        ['remove_enum_values(op, "item_status", ["draft", "active", "retired"])'],
        ["ALTER TYPE item_status ADD VALUE IF NOT EXISTS 'in_review' AFTER 'draft'"],
    ),
    "limit_items_stem_length": (
        rewriting_type_change,
        ["WARNING (written by autogenerate)", "rewrites items", "squawk_ignore"],
        ["ALTER TABLE items ALTER COLUMN stem TYPE VARCHAR(4000)"],
    ),
    "drop_learning_sessions_ended_at": (
        dropped_column,
        ["WARNING (written by autogenerate)", "drops learning_sessions.ended_at"],
        ["ALTER TABLE learning_sessions DROP COLUMN ended_at"],
    ),
}


def column_order_ignored(dump: str) -> str:
    """A dump with each table's column lines sorted: a column dropped then re-added by the
    downgrade comes back last (PostgreSQL adds columns at the end, "ALTER TABLE ... ADD COLUMN")."""
    out: list[str] = []
    block: list[str] | None = None
    for line in dump.splitlines():
        if line.startswith("CREATE TABLE "):
            out.append(line)
            block = []
        elif block is not None and line.startswith(")"):
            out += sorted(column.rstrip(",") for column in block)
            out.append(line)
            block = None
        elif block is not None:
            block.append(line)
        else:
            out.append(line)
    return "\n".join(out)


def head_of(project: ProjectCopy) -> str:
    script = ScriptDirectory.from_config(migrations.alembic_config())
    [head] = script.get_heads()
    return head


def ruff(project: ProjectCopy, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=project.root, capture_output=True, text=True, check=False
    )


def autogenerate(url: URL, name: str, models: MetaData) -> Path:
    config = migrations.alembic_config(url)
    config.attributes["target_metadata"] = models
    script = command.revision(config, message=name, autogenerate=True)
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


def offline_sql(url: URL, start: str, end: str) -> str:
    buffer = io.StringIO()
    migrations.upgrade(url, f"{start}:{end}", sql=True, output=buffer)
    return buffer.getvalue()


def alembic_check(url: URL, models: MetaData) -> None:
    config = migrations.alembic_config(url)
    config.attributes["target_metadata"] = models
    command.check(config)  # raises when the models and the database differ


@pytest.fixture
def seeded_db(db_url: URL) -> URL:
    """A database at head with a few rows, so rewritten operations meet a table in use."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        user = make_user(conn, f"author-{uuid.uuid4().hex[:6]}@example.com")
        item = make_item(conn)
        conn.execute(text("UPDATE items SET created_by = :u WHERE id = :i"), {"u": user, "i": item})
    engine.dispose()
    return db_url


@pytest.mark.parametrize("name", list(CHANGES))
def test_autogenerated_revision_passes_every_check_and_round_trips(
    name: str,
    project: ProjectCopy,
    seeded_db: URL,
    make_db: Callable[..., URL],
    template_db: str,
    pg_server: PgServer,
) -> None:
    change, in_revision, in_sql = CHANGES[name]
    previous = head_of(project)
    models = copy_of_models()
    change(models)
    before = pg_server.pg_dump_schema(seeded_db)
    # what validate-schema already reports at the previous head is not this revision's doing
    known = {(f.kind, f.object) for f in validate_schema(seeded_db, now=ON_HEAD_DAY).findings}

    path = autogenerate(seeded_db, name, models)
    source = path.read_text()
    assert path.name == f"{int(previous) + 1:04d}_{name}.py"
    for expected in in_revision:
        assert expected in source, source
    assert ruff(project, "check", str(path)).returncode == 0, ruff(project, "check", str(path)).stdout
    assert ruff(project, "format", "--check", str(path)).returncode == 0, source
    report = validate_migrations(offline=True)
    assert report.findings == [], [f.message for f in report.findings]
    revision = head_of(project)
    sql = offline_sql(seeded_db, previous, revision)
    for expected in in_sql:
        assert expected in sql, sql

    migrations.upgrade(seeded_db)
    alembic_check(seeded_db, models)
    schema = validate_schema(seeded_db, models, now=ON_HEAD_DAY)
    assert [f for f in schema.findings if (f.kind, f.object) not in known] == [], render_text(schema)
    after = pg_server.pg_dump_schema(seeded_db)

    migrations.downgrade(seeded_db, previous)
    if change is dropped_column:  # the only difference a downgrade cannot undo: column order
        assert column_order_ignored(pg_server.pg_dump_schema(seeded_db)) == column_order_ignored(before)
    else:
        assert pg_server.pg_dump_schema(seeded_db) == before
    migrations.upgrade(seeded_db)
    assert pg_server.pg_dump_schema(seeded_db) == after

    offline_db = make_db("alp_offline", template_db)
    applied = pg_server.psql(offline_db, "-v", "ON_ERROR_STOP=1", input_text=sql)
    assert applied.returncode == 0, applied.stderr
    assert pg_server.pg_dump_schema(offline_db) == after


def test_enum_downgrade_refuses_whole_while_a_row_holds_the_new_value(
    project: ProjectCopy, seeded_db: URL, pg_server: PgServer
) -> None:
    previous = head_of(project)
    models = copy_of_models()
    enum_value_in_the_middle(models)
    autogenerate(seeded_db, "add_item_status_in_review", models)
    migrations.upgrade(seeded_db)
    engine = make_engine(seeded_db)
    with engine.begin() as conn:
        make_item(conn, status="in_review")
    engine.dispose()
    upgraded = pg_server.pg_dump_schema(seeded_db)

    held = r"cannot remove in_review from type item_status: rows of items\.status still hold it"
    with pytest.raises(MigrationFailed, match=held):
        migrations.downgrade(seeded_db, previous)
    assert pg_server.pg_dump_schema(seeded_db) == upgraded  # nothing done halfway


def test_plain_alembic_revision_is_numbered_and_formatted_without_a_database(project: ProjectCopy) -> None:
    previous = head_of(project)
    config = migrations.alembic_config("postgresql+psycopg2://nobody@/nowhere?host=/nonexistent")
    script = command.revision(config, message="add_items_source_column")
    assert script is not None and not isinstance(script, list)
    path = Path(script.path)
    assert path.name == f"{int(previous) + 1:04d}_add_items_source_column.py"
    assert ruff(project, "check", str(path)).returncode == 0
    assert ruff(project, "format", "--check", str(path)).returncode == 0


@pytest.mark.parametrize("autogenerate_flag", [False, True])
def test_plain_alembic_revision_with_a_vague_name_is_refused(
    project: ProjectCopy, db_url: URL, autogenerate_flag: bool
) -> None:
    versions = set(project.versions.iterdir())
    config = migrations.alembic_config(db_url)
    with pytest.raises(CommandError, match="'fix_bug' does not say what the migration does"):
        command.revision(config, message="fix_bug", autogenerate=autogenerate_flag)
    assert set(project.versions.iterdir()) == versions


def test_plain_alembic_cli_refuses_a_vague_name_in_one_line(project: ProjectCopy) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "revision", "-m", "fix_bug"],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "FAILED: migration name 'fix_bug' does not say what the migration does" in output
    assert "Traceback" not in output


def test_a_check_constraint_helper_is_not_left_behind(project: ProjectCopy, seeded_db: URL) -> None:
    """NOT NULL via a CHECK: the CHECK is scaffolding, gone once SET NOT NULL holds."""
    models = copy_of_models()
    not_null_on_existing_column(models)
    autogenerate(seeded_db, "require_items_created_by", models)
    migrations.upgrade(seeded_db)
    engine = make_engine(seeded_db)
    with engine.connect() as conn:
        checks = conn.scalars(
            text("SELECT conname FROM pg_constraint WHERE conrelid = 'items'::regclass AND contype = 'c'")
        ).all()
    engine.dispose()
    assert "ck_items_created_by_not_null" not in checks
