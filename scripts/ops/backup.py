"""``alp-db backup``: pg_dump of the database in custom format, readable by its owner only.

- custom format (``-Fc``): compressed, and pg_restore can list it and restore selectively
  or in parallel (pg_dump docs, "Options", ``--format``);
- the file is created with mode 0600 (``O_CREAT | O_EXCL``) *before* pg_dump writes a byte,
  and pg_dump writes to that descriptor: no moment where a dump of the database is
  readable by others, and an existing file or symlink is never followed or overwritten;
- the password never reaches argv (``ps`` shows every process's arguments to every user).
  It goes in a temporary password file (0600, removed afterwards) named by PGPASSFILE,
  rather than PGPASSWORD: libpq's docs advise against PGPASSWORD "for security reasons, as
  some operating systems allow non-root users to see process environment variables via
  ps" (libpq, "Environment Variables"). Every connection parameter travels through the
  environment, which also keeps a database name containing ``=`` from being read as a
  connection string;
- pg_dump's major version is the server's (scripts.db.clients says where it is looked for
  and why): the dump then restores with that server's own pg_restore. A newer pg_dump is
  used only when it writes an archive that server's pg_restore reads; otherwise the backup
  is refused with what to install. The restore command printed names the exact pg_restore.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL

from scripts.db.clients import (
    Client,
    archive_version,
    available,
    install_hint,
    matching,
    run_client,
    version_of,
)
from scripts.db.target import resolve_url
from scripts.db.urls import libpq_url, redact, scrub
from scripts.errors import BackupFailed
from scripts.project import project_home

if TYPE_CHECKING:
    from scripts.ops.backup_verify import Verification

BACKUP_DIR = "backups"  # under the project root; git-ignored
FILE_MODE = 0o600
DIR_MODE = 0o700


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int  # bytes
    duration_s: float
    server_version: str
    pg_dump: Client
    pg_restore: Client | None  # the one to restore with (None: install the server's)
    restore_command: str
    verification: Verification | None = None


def create_backup(
    database_url: str | URL | None = None,
    output: str | Path | None = None,
    *,
    bindir: Path | None = None,
    verify: bool = False,
) -> Backup:
    """pg_dump the database with a pg_dump that matches the server; optionally verify the dump."""
    url = resolve_url(database_url)
    server_version, server_major = server_version_of(url)
    pg_dump, pg_restore = choose_clients(server_major, bindir)
    started = time.monotonic()
    path, fd = _create_private_file(Path(output) if output else None, url)
    written = False
    try:
        result = run_client(url, pg_dump.path, ["--format=custom"], stdout=fd)
        written = result.returncode == 0
    finally:
        os.close(fd)
        if not written:  # never leave a truncated dump that looks like a backup
            path.unlink(missing_ok=True)
    if not written:
        raise _dump_error(result.stderr, url)
    duration = time.monotonic() - started
    verification = None
    if verify:
        from scripts.ops.backup_verify import verify_backup

        if pg_restore is None:
            raise BackupFailed(
                f"cannot verify: no pg_restore {server_major} to restore the dump with",
                install_hint(server_major),
            )
        verification = verify_backup(url, path, pg_dump=pg_dump, pg_restore=pg_restore)
    return Backup(
        path=path,
        size=path.stat().st_size,
        duration_s=duration,
        server_version=server_version,
        pg_dump=pg_dump,
        pg_restore=pg_restore,
        restore_command=restore_command(url, path, pg_restore, server_major),
        verification=verification,
    )


def server_version_of(url: URL) -> tuple[str, int]:
    """The server's version ("15.8") and major (15), asked over a connection of our own."""
    from sqlalchemy import text

    from scripts.db.target import session

    with session(url) as conn:
        row = conn.execute(
            text("SELECT current_setting('server_version'), current_setting('server_version_num')::int")
        ).one()
    return str(row[0]).split()[0], int(row[1]) // 10000


def choose_clients(server_major: int, bindir: Path | None = None) -> tuple[Client, Client | None]:
    """(pg_dump, pg_restore) for a server of ``server_major``; BackupFailed when none will do."""
    dump = matching("pg_dump", server_major, bindir)
    if dump is None:
        # A newer pg_dump will do only if that server's own pg_restore reads what it writes.
        newer = sorted(
            (c for c in available("pg_dump", bindir) if c.major > server_major),
            key=lambda c: c.major,
        )
        readable = [c for c in newer if archive_version(c.major) <= archive_version(server_major)]
        if not readable:
            found = ", ".join(f"{c.path} ({c.version})" for c in available("pg_dump", bindir)) or "none"
            raise BackupFailed(
                f"no pg_dump whose dump PostgreSQL {server_major}'s pg_restore can read (found: {found})",
                install_hint(server_major),
            )
        dump = readable[0]
    restore = matching("pg_restore", server_major, bindir)
    if restore is None:
        same_dir = dump.bindir / "pg_restore"
        version = version_of(same_dir)
        restore = Client(same_dir, version) if version else None
    return dump, restore


def restore_command(url: URL, path: Path, pg_restore: Client | None, server_major: int) -> str:
    """The exact command that recreates the database from the dump (pg_restore --create reads
    the database name from the archive and connects to ``postgres`` to create it)."""
    program = shlex.quote(str(pg_restore.path)) if pg_restore else "pg_restore"
    target = libpq_url(url.set(password=None, database="postgres"))
    return f"{program} --create --exit-on-error --dbname={shlex.quote(target)} {shlex.quote(str(path))}"


def default_path(url: URL, now: datetime | None = None) -> Path:
    """backups/<database>_<YYYYmmdd_HHMMSS>.dump under the project root (time in UTC)."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d_%H%M%S")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", url.database or "postgres")
    return project_home() / BACKUP_DIR / f"{name}_{stamp}.dump"


def _create_private_file(output: Path | None, url: URL) -> tuple[Path, int]:
    """Create the dump file, mode 0600, refusing to reuse an existing path."""
    path = output or default_path(url)
    if output is None:
        path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        raise BackupFailed(
            f"{path} already exists", "choose another --output; a backup is never overwritten"
        ) from None
    except OSError as exc:
        raise BackupFailed(
            f"cannot create {path}: {exc.strerror}", "check the directory and its permissions"
        ) from None
    os.fchmod(fd, FILE_MODE)  # whatever the umask did
    return path, fd


def _dump_error(stderr: str, url: URL) -> BackupFailed:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    detail = next((line for line in lines if "error:" in line), lines[0] if lines else "no output")
    detail = scrub(detail.removeprefix("pg_dump: ").removeprefix("error: "), url)
    text = detail.lower()
    if "password authentication failed" in text or "no password supplied" in text:
        hint = "check the password in DATABASE_URL"
    elif "server version mismatch" in text:
        hint = "pg_dump must be at least as new as the server: put a newer PostgreSQL's bin on PATH"
    elif "permission denied" in text:
        hint = "the role must be able to read every table (e.g. GRANT pg_read_all_data)"
    else:
        hint = f"check that {redact(url)} is reachable and the role may read it"
    return BackupFailed(f"pg_dump failed: {detail}", hint)
