"""Running PostgreSQL's own client programs (pg_dump, psql, pg_restore) on a URL, safely.

- the password never reaches argv (``ps`` shows every process's arguments to every user):
  it goes in a temporary password file (0600, removed afterwards) named by PGPASSFILE, not
  in PGPASSWORD, which libpq's docs advise against "for security reasons, as some operating
  systems allow non-root users to see process environment variables via ps" (libpq,
  "Environment Variables");
- every connection parameter travels through the environment, which also keeps a database
  name containing ``=`` from being read as a connection string;
- inherited PG* variables are dropped: PGPASSWORD would outrank our passfile, and a stray
  PGHOST or PGSERVICE would point the tool at another server than the URL's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import URL

from scripts.db.engine import DEFAULT_CONNECT_TIMEOUT_S, ENV_CONNECT_TIMEOUT
from scripts.errors import DevDatabaseError

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


def client_env(url: URL, passfile: Path | None, *, application_name: str) -> dict[str, str]:
    """The environment for a libpq client program connecting to ``url``; no password in it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if url.host:
        env["PGHOST"] = url.host
    if url.port:
        env["PGPORT"] = str(url.port)
    query = {key: str(value) for key, value in url.query.items()}
    env.update({LIBPQ_ENV[key]: value for key, value in query.items() if key in LIBPQ_ENV})
    if url.username:
        env["PGUSER"] = url.username
    if url.database:
        env["PGDATABASE"] = url.database
    env["PGCONNECT_TIMEOUT"] = os.environ.get(ENV_CONNECT_TIMEOUT, str(DEFAULT_CONNECT_TIMEOUT_S))
    env["PGAPPNAME"] = application_name
    if passfile is not None:
        env["PGPASSFILE"] = str(passfile)
    return env


@contextmanager
def passfile(password: str | None) -> Iterator[Path | None]:
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


def tool_version(exe: Path) -> tuple[int, int] | None:
    """``pg_dump (PostgreSQL) 18.1`` -> (18, 1); None when it does not run."""
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    match = _VERSION.search(result.stdout)
    if result.returncode != 0 or match is None:
        return None
    return int(match[1]), int(match[2] or 0)


def client_candidates(program: str) -> list[Path]:
    """``program`` from ALP_DB_PG_BINDIR, the embedded wheel and PATH, each once."""
    from scripts.db.devdb import default_bindir, embedded_bindir

    found: list[Path] = []
    for bindir in (default_bindir, embedded_bindir):
        try:
            found.append(bindir() / program)
        except DevDatabaseError:  # the embedded wheel is not installed
            continue
    on_path = shutil.which(program)
    if on_path:
        found.append(Path(on_path))
    unique: dict[Path, Path] = {}
    for exe in found:
        if exe.is_file():
            unique.setdefault(exe.resolve(), exe)
    return list(unique.values())


def newest_client(program: str) -> tuple[Path, tuple[int, int]] | None:
    """The newest ``program`` available: pg_dump refuses to dump a server newer than itself."""
    versions = {exe: tool_version(exe) for exe in client_candidates(program)}
    usable = {exe: version for exe, version in versions.items() if version is not None}
    if not usable:
        return None
    best = max(usable, key=lambda exe: usable[exe])
    return best, usable[best]
