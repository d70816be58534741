"""alp-db backup: a restorable custom-format dump, mode 0600, the password never in argv."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from psycopg2 import sql
from sqlalchemy.engine import URL
from sqlalchemy_utils import create_database

from scripts.cli import main
from scripts.db.clients import archive_version, build_command
from scripts.db.devdb import Cluster
from scripts.db.engine import make_engine
from scripts.db.urls import DRIVER
from scripts.errors import BackupFailed, LoginRefused
from scripts.migrations import api as migrations
from scripts.ops.backup import choose_clients, create_backup, server_version_of
from tests.conftest import PgServer, free_port
from tests.factories import add_attempts, make_item, make_user

# Every character that needs escaping somewhere: URL (@ # % !), pgpass (: and \).
PASSWORD = "p@ss:w#rd!%\\x"
SYSTEM_PG15 = Path("/usr/lib/postgresql/15/bin")


def restore_list(pg_server: PgServer, dump: Path) -> str:
    listing = subprocess.run(
        [str(pg_server.client_bindir / "pg_restore"), "--list", str(dump)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert listing.returncode == 0, listing.stderr
    return listing.stdout


@pytest.fixture
def password_url(pg_server: PgServer, db_url: URL, make_role) -> URL:  # type: ignore[no-untyped-def]
    """db_url through 127.0.0.1 with SCRAM, as a role whose password holds @ # ! % : and \\."""
    if pg_server.tcp_port is None:
        pytest.skip("the server from TEST_DATABASE_URL has no password-authenticated listener of ours")
    role = make_role("backup", db_url, password=PASSWORD)
    with pg_server.admin_engine().connect() as conn, conn.connection.cursor() as cur:
        cur.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(sql.Identifier(role)))
    return URL.create(
        DRIVER,
        username=role,
        password=PASSWORD,
        host="127.0.0.1",
        port=pg_server.tcp_port,
        database=db_url.database,
    )


def test_backup_is_a_restorable_custom_dump_readable_by_its_owner_only(
    pg_server: PgServer, db_url: URL, tmp_path: Path
) -> None:
    result = create_backup(db_url, tmp_path / "alp.dump")

    assert stat.S_IMODE(result.path.stat().st_mode) == 0o600
    assert result.size == result.path.stat().st_size > 0
    listing = restore_list(pg_server, result.path)
    assert "TABLE public users" in listing
    assert "TABLE public migration_history" in listing


def test_default_path_is_backups_dir_named_after_database_and_time(
    db_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALP_DB_HOME", str(tmp_path))

    result = create_backup(db_url)

    assert result.path.parent == tmp_path / "backups"
    assert re.fullmatch(rf"{db_url.database}_\d{{8}}_\d{{6}}\.dump", result.path.name)
    assert stat.S_IMODE((tmp_path / "backups").stat().st_mode) == 0o700


def test_existing_file_is_never_overwritten(db_url: URL, tmp_path: Path) -> None:
    target = tmp_path / "keep.dump"
    target.write_text("earlier backup")

    with pytest.raises(BackupFailed, match="already exists"):
        create_backup(db_url, target)

    assert target.read_text() == "earlier backup"


def test_password_is_in_neither_argv_nor_environment(password_url: URL, tmp_path: Path) -> None:
    command = build_command(password_url, Path("pg_dump"), tmp_path / "passfile")

    assert not any(PASSWORD in arg for arg in command.argv)
    assert not any(PASSWORD in value for value in command.env.values())
    assert "PGPASSWORD" not in command.env
    assert command.env["PGPASSFILE"] == str(tmp_path / "passfile")
    assert command.env["PGUSER"] == password_url.username


def test_backup_logs_in_with_a_password_full_of_special_characters(
    pg_server: PgServer, password_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))  # where the password file goes
    # written as the platform writes it: raw, unescaped
    raw = f"postgresql://{password_url.username}:{PASSWORD}@127.0.0.1:{password_url.port}/{password_url.database}"

    result = create_backup(raw, tmp_path / "alp.dump")

    assert "TABLE public users" in restore_list(pg_server, result.path)
    assert list(private_tmp.iterdir()) == []  # the password file is gone


def test_wrong_password_fails_clearly_without_showing_it(password_url: URL, tmp_path: Path) -> None:
    wrong = password_url.set(password="Wr0ng@#!%pass")
    target = tmp_path / "alp.dump"

    with pytest.raises(LoginRefused) as raised:
        create_backup(wrong, target)

    message = str(raised.value)
    assert "login refused" in message
    assert "check the password" in message
    assert "Wr0ng" not in message
    assert not target.exists()


def test_pg_dump_and_pg_restore_match_the_servers_major_version(pg_server: PgServer, db_url: URL) -> None:
    _, server_major = server_version_of(db_url)

    dump, restore = choose_clients(server_major)

    assert dump.major == server_major and restore is not None and restore.major == server_major


def test_no_pg_dump_for_the_servers_major_is_refused_naming_what_to_install() -> None:
    with pytest.raises(BackupFailed) as raised:
        choose_clients(99)  # no such PostgreSQL here, and nothing newer exists

    message = str(raised.value)
    assert "\n" not in message
    assert "install the PostgreSQL 99 client programs" in message and "postgresql-client-99" in message


@pytest.mark.skipif(not (SYSTEM_PG15 / "pg_dump").exists(), reason="no PostgreSQL 15 client programs here")
def test_a_newer_pg_dump_is_taken_only_when_the_servers_pg_restore_reads_its_archives() -> None:
    # pg_dump 15 writes archive 1.14, which pg_restore 12-14 read; 16+ write 1.15 and later
    assert archive_version(15) == archive_version(13) < archive_version(16) < archive_version(18)
    dump, _ = choose_clients(13, SYSTEM_PG15)
    assert dump.major >= 14 and archive_version(dump.major) == archive_version(13)


def test_backup_command_writes_the_file_and_says_where(
    pg_server: PgServer, db_url: URL, tmp_path: Path
) -> None:
    target = tmp_path / "cli.dump"

    result = CliRunner().invoke(
        main,
        ["backup", "--output", str(target), "--database-url", db_url.render_as_string(hide_password=False)],
    )

    assert result.exit_code == 0, result.output
    assert f"backup written: {target}" in result.stdout
    assert "TABLE public users" in restore_list(pg_server, target)


def test_backup_verify_restores_into_a_scratch_database_and_drops_it(
    pg_server: PgServer, db_url: URL, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        main,
        [
            "backup",
            "--verify",
            "--output",
            str(tmp_path / "v.dump"),
            "--database-url",
            db_url.render_as_string(False),
        ],
    )

    assert result.exit_code == 0, result.output
    verified = [line for line in result.stdout.splitlines() if line.startswith("verified:")]
    assert len(verified) == 1 and "schema identical" in verified[0], result.stdout
    with pg_server.admin_engine().connect() as conn:
        left = conn.exec_driver_sql("SELECT datname FROM pg_database WHERE datname LIKE '%%_verify_%%'").all()
    assert left == []


@pytest.fixture(scope="module")
def pg15() -> Iterator[URL]:
    """A PostgreSQL 15 server of the system's, migrated to head, with a few rows."""
    if not (SYSTEM_PG15 / "postgres").exists():
        pytest.skip(f"no PostgreSQL 15 server binaries in {SYSTEM_PG15}")
    # not under pytest's tmp_path: pytest resets its directories to 0700, which locks out
    # the unprivileged user the server runs as under root
    home = Path(tempfile.mkdtemp(prefix="alp-db-pg15-"))
    cluster = Cluster(home=home, bindir=SYSTEM_PG15, port=free_port())
    try:
        cluster.ensure_running()
        url = cluster.url("alp_pg15")
        create_database(url)
        migrations.upgrade(url)
        with make_engine(url).begin() as conn:
            add_attempts(conn, make_user(conn), make_item(conn), "2025-03-01", count=20)
        yield url
    finally:
        cluster.destroy()
        shutil.rmtree(home, ignore_errors=True)


def test_pg15_backup_restores_with_pg15s_own_pg_restore_and_verifies(
    pg15: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALP_DB_PG_BINDIR", raising=False)
    target = tmp_path / "pg15.dump"
    result = CliRunner().invoke(
        main, ["backup", "--verify", "--output", str(target), "--database-url", pg15.render_as_string(False)]
    )
    assert result.exit_code == 0, result.output
    assert "pg_dump 15." in result.stdout and "for PostgreSQL 15." in result.stdout
    assert "verified:" in result.stdout and "rows match" in result.stdout

    # PostgreSQL 15's own pg_restore reads the archive...
    listing = subprocess.run(
        [str(SYSTEM_PG15 / "pg_restore"), "--list", str(target)], capture_output=True, text=True, check=False
    )
    assert listing.returncode == 0, listing.stderr
    assert "TABLE public attempts" in listing.stdout
    # ...and the restore command printed, run as printed, recreates the database
    command = next(line for line in result.stdout.splitlines() if line.startswith("restore with: "))
    restore = command.removeprefix("restore with: ")
    assert restore.startswith(f"{SYSTEM_PG15}/pg_restore --create --exit-on-error")
    with make_engine(pg15.set(database="postgres"), isolation_level="AUTOCOMMIT").connect() as conn:
        conn.exec_driver_sql("DROP DATABASE alp_pg15 WITH (FORCE)")
    restored = subprocess.run(restore, shell=True, capture_output=True, text=True, check=False)
    assert restored.returncode == 0, restored.stderr
    with make_engine(pg15).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM attempts").scalar() == 20
