"""alp-db backup: a restorable custom-format dump, mode 0600, the password never in argv."""

from __future__ import annotations

import re
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from psycopg2 import sql
from sqlalchemy.engine import URL

from scripts.cli import main
from scripts.db.urls import DRIVER
from scripts.errors import BackupFailed
from scripts.ops.backup import build_command, create_backup, find_pg_dump
from tests.conftest import PgServer

# Every character that needs escaping somewhere: URL (@ # % !), pgpass (: and \).
PASSWORD = "p@ss:w#rd!%\\x"


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

    with pytest.raises(BackupFailed) as raised:
        create_backup(wrong, target)

    message = str(raised.value)
    assert "password authentication failed" in message
    assert "check the password" in message
    assert "Wr0ng" not in message
    assert not target.exists()


def test_newest_pg_dump_is_chosen(pg_server: PgServer) -> None:
    exe, version = find_pg_dump()
    embedded = subprocess.run(
        [str(pg_server.client_bindir / "pg_dump"), "--version"], capture_output=True, text=True, check=True
    ).stdout

    assert exe.is_file()
    embedded_major = re.search(r"(\d+)\.\d+", embedded)
    assert embedded_major is not None
    assert int(version.split(".")[0]) >= int(embedded_major[1])


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
