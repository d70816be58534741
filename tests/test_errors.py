"""Bad input: one clear line, a non-zero exit, no traceback, never the password."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.engine import URL

from scripts.cli import main
from scripts.db.engine import make_engine
from scripts.db.sqlstate import privilege_hint
from scripts.db.urls import parse_url
from tests.project import HEAD, NEXT, REPO_ROOT, ProjectCopy

SECRET = "s3cr@t#pa%ss!"


def run_cli(
    *args: str, database_url: str | None = None, module: str = "scripts", **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    environ.update(env)
    if database_url is not None:
        environ["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def invoke(*args: str, database_url: str | None = None, **env: str) -> Result:
    """The command in this process (click's CliRunner): for checks of one line and an exit code."""
    environ: dict[str, str | None] = {"DATABASE_URL": database_url, **env}
    return CliRunner().invoke(main, list(args), env=environ)


def assert_one_clear_line(
    result: subprocess.CompletedProcess[str] | Result, *fragments: str, exit_code: int = 2
) -> None:
    """One ``alp-db: error:`` line holding every fragment, the README's exit code, no traceback."""
    if isinstance(result, Result):
        # anything but our own sys.exit would be an exception CliRunner swallowed
        assert isinstance(result.exception, SystemExit), result.exc_info
        returncode = result.exit_code
    else:
        returncode = result.returncode
    assert returncode == exit_code, result.stderr
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("alp-db: error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.fixture
def password_role(pg_server, empty_db_url: URL, make_role):
    """A role with a password full of URL-special characters, reachable over TCP with SCRAM.

    It owns the database's public schema, so it can migrate it.
    """
    if pg_server.tcp_port is None:
        pytest.skip("needs the suite's own cluster (a TCP listener with password authentication)")
    role = make_role("alp_pw", empty_db_url, password=SECRET)
    engine = make_engine(empty_db_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"ALTER SCHEMA public OWNER TO {conn.dialect.identifier_preparer.quote(role)}")
    engine.dispose()
    return role, f"postgresql://{role}:{SECRET}@127.0.0.1:{pg_server.tcp_port}/{empty_db_url.database}"


def test_guide_style_url_with_special_characters_in_the_password_migrates(password_role):
    role, raw_url = password_role
    url = parse_url(raw_url)
    assert url.drivername == "postgresql+psycopg2" and url.password == SECRET
    migrated = run_cli("migrate", database_url=raw_url)
    assert migrated.returncode == 0, migrated.stderr
    result = run_cli("test-connection", database_url=raw_url)
    assert result.returncode == 0, result.stdout
    assert f"as {role}" in result.stdout and f"revision:   {HEAD}" in result.stdout
    assert SECRET not in result.stdout + result.stderr + migrated.stdout + migrated.stderr


def test_plain_alembic_reads_the_guide_style_database_url(password_role):
    _, raw_url = password_role
    result = run_cli("upgrade", "head", database_url=raw_url, module="alembic")
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_percent_encoded_password_is_decoded(password_role):
    _, raw_url = password_role
    from urllib.parse import quote

    encoded = raw_url.replace(SECRET, quote(SECRET, safe=""))
    assert parse_url(encoded).password == SECRET


def test_wrong_password_is_one_line_without_the_password(password_role):
    _, raw_url = password_role
    wrong = raw_url.replace(SECRET, SECRET + "x")
    result = run_cli("migrate", database_url=wrong)
    assert_one_clear_line(result, "login refused")


def test_malformed_url():
    result = invoke("migrate", database_url="postgresql//nohost")
    assert_one_clear_line(result, "malformed")


def test_non_postgres_url():
    result = invoke("migrate", database_url="mysql://u:p@localhost/db")
    assert_one_clear_line(result, "not PostgreSQL")


def test_unreachable_host_fails_fast():
    result = invoke(
        "migrate", database_url=f"postgresql://u:{SECRET}@127.0.0.1:1/db", ALP_DB_CONNECT_TIMEOUT="3"
    )
    assert_one_clear_line(result, "cannot reach the database", "127.0.0.1")


def test_missing_database(db_url: URL):
    missing = db_url.set(database="no_such_database_here").render_as_string(False)
    result = invoke("migrate", database_url=missing)
    assert_one_clear_line(result, "does not exist")


def test_unknown_revision(db_url: URL):
    result = invoke("migrate", "--to", "9999", database_url=db_url.render_as_string(False))
    assert_one_clear_line(result, "9999")


def test_missing_privilege_to_migrate(empty_db_url: URL, make_role):
    role = make_role("alp_nopriv", empty_db_url)
    engine = make_engine(empty_db_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
    engine.dispose()
    result = invoke("migrate", database_url=empty_db_url.set(username=role).render_as_string(False))
    assert_one_clear_line(result, "permission denied")


def test_edited_applied_revision_stops_migrate(project, db_url: URL):
    sql_file = project.versions / "0001_initial_schema.upgrade.sql"
    sql_file.write_text(sql_file.read_text().replace("varchar(200)", "varchar(250)"))
    result = invoke("migrate", database_url=db_url.render_as_string(False), ALP_DB_HOME=str(project.root))
    assert_one_clear_line(result, "revision 0001 was changed after it was applied")


def migrate_while_users_is_read(project: ProjectCopy, db_url: URL, *args: str, **env: str) -> Result:
    """Run `alp-db migrate` while another session's open transaction holds ACCESS SHARE on users."""
    holder = make_engine(db_url).connect()
    holder.execute(text("SELECT count(*) FROM users"))
    try:
        url = db_url.render_as_string(False)
        return invoke("migrate", *args, database_url=url, ALP_DB_HOME=str(project.root), **env)
    finally:
        holder.rollback()
        holder.close()


def test_lock_timeout_names_the_table(project, db_url: URL):
    project.add_revision(
        NEXT,
        "add_users_nickname_column",
        HEAD,
        'op.execute("ALTER TABLE users ADD COLUMN nickname text")',
    )
    result = migrate_while_users_is_read(project, db_url, ALP_DB_LOCK_TIMEOUT="300ms")
    assert_one_clear_line(result, "lock timeout", "users", "300ms")


def test_lost_connection_during_a_revision_is_one_line_exit_2_in_alp_db_and_in_alembic(project, db_url: URL):
    # the revision ends its own session, as a server restart would (SQLSTATE 57P01)
    project.add_revision(
        NEXT,
        "add_notes_then_lose_the_session",
        HEAD,
        """
        op.execute("CREATE TABLE lost_notes (id int)")
        op.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        """,
    )
    url = db_url.render_as_string(False)
    result = invoke("migrate", database_url=url, ALP_DB_HOME=str(project.root))
    assert_one_clear_line(
        result, "lost the connection to the database during a migration", "run the same command again"
    )
    plain = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(project.root / "alembic.ini"), "upgrade", "head"],
        cwd=project.root,
        env={**os.environ, "DATABASE_URL": url, "ALP_DB_HOME": str(project.root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = plain.stdout + plain.stderr
    assert plain.returncode != 0 and "FAILED: lost the connection to the database" in output, output
    assert "Traceback" not in output
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == HEAD
        assert conn.scalar(text("SELECT to_regclass('lost_notes')")) is None
        failed = conn.scalar(
            text("SELECT count(*) FROM migration_history WHERE revision = :r AND NOT success"), {"r": NEXT}
        )
    engine.dispose()
    assert failed == 2  # each run's failure is in the history


def test_debug_flag_shows_the_traceback_and_keeps_the_exit_code():
    result = run_cli("--debug", "migrate", database_url="postgresql//nohost")
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr
    assert result.returncode == 2, "--debug must not turn 'could not run' (2) into 1"
    assert result.stderr.rstrip().splitlines()[-1].startswith("alp-db: error: database URL is malformed")


def test_validate_migrations_with_a_wrong_password_fails_rather_than_skipping_history(password_role):
    _, raw_url = password_role
    result = invoke("validate-migrations", database_url=raw_url.replace(SECRET, "wrong"))
    assert_one_clear_line(result, "login refused")


def test_lock_timeout_option_beats_the_environment(project, db_url: URL):
    project.add_revision(
        NEXT, "add_users_alias_column", HEAD, 'op.execute("ALTER TABLE users ADD COLUMN alias text")'
    )
    result = migrate_while_users_is_read(
        project, db_url, "--lock-timeout", "250ms", ALP_DB_LOCK_TIMEOUT="10min"
    )
    assert_one_clear_line(result, "lock timeout", "users", "250ms")


def test_a_malformed_timeout_is_one_line():
    result = invoke("migrate", "--sql", "--lock-timeout", "soon")
    assert_one_clear_line(result, "lock_timeout 'soon' is not a duration")


def test_offline_sql_sets_the_timeouts_given_as_options():
    result = run_cli("migrate", "--sql", "--lock-timeout", "2s", "--statement-timeout", "1h")
    assert result.returncode == 0, result.stderr
    assert "SET lock_timeout = '2s';" in result.stdout
    assert "SET statement_timeout = '1h';" in result.stdout


@pytest.mark.parametrize(
    ("message", "says", "never"),
    [
        ("must be owner of table users", "member of the owning role", "grant the privilege"),
        ("must be owner of relation attempts", "not a privilege GRANT can give", "grant the privilege"),
        ("permission denied for table users", "grant the privilege to role 'app'", "owning role"),
        ("permission denied for schema public", "grant the privilege to role 'app'", "owning role"),
    ],
)
def test_privilege_hint_tells_ownership_from_a_grantable_privilege(message: str, says: str, never: str):
    hint = privilege_hint(message, "app")
    assert says in hint and never not in hint


def test_migrating_a_table_the_role_does_not_own_says_ownership_cannot_be_granted(
    project, db_url: URL, make_role
):
    """The role may write the runtime's tables and CREATE in public, but does not own users."""
    role = make_role("alp_not_owner", db_url)
    engine = make_engine(db_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        quoted = conn.dialect.identifier_preparer.quote(role)
        conn.exec_driver_sql(f"GRANT CREATE ON SCHEMA public TO {quoted}")
        conn.exec_driver_sql(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON alembic_version, migration_history TO {quoted}"
        )
        conn.exec_driver_sql(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {quoted}")
    engine.dispose()
    project.add_revision(
        NEXT, "add_users_motto_column", HEAD, 'op.execute("ALTER TABLE users ADD COLUMN motto text")'
    )
    result = invoke("migrate", database_url=db_url.set(username=role).render_as_string(False))
    assert_one_clear_line(result, "must be owner of table users", "member of the owning role")
    assert "grant the privilege" not in result.stderr
