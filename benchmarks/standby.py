"""A primary and one streaming hot standby on this machine, for tests and benchmarks alike.

The primary is a :class:`scripts.db.devdb.Cluster` (Unix socket only; as root the server runs
as an unprivileged user). The standby is cloned from it with ``pg_basebackup -R`` ("Setting
Up a Standby Server", PostgreSQL docs, chapter 27.2.4), which writes ``standby.signal`` and
``primary_conninfo``; ``-C -S`` creates the physical replication slot and names it in
``primary_slot_name``, so the primary keeps the WAL the standby has not received yet
(27.2.6, "Replication Slots"). Both listen on their own socket directory and port.

Nothing here sleeps to synchronise: each wait polls the server for the state it waits for
(``pg_stat_replication``, ``pg_get_wal_replay_pause_state()``, replay LSNs) and gives up
after a bound. Both servers are stopped and their directories removed on exit.

Works with the embedded binaries and with ``ALP_DB_PG_BINDIR`` (whatever ``Cluster`` uses).
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.engine import URL, Engine

from scripts.db.devdb import SUPERUSER, Cluster, default_bindir
from scripts.db.engine import make_engine

SLOT_NAME = "alp_db_standby"
WAIT_S = 60.0  # every wait ends as soon as the server reports the state; this only bounds it
POLL_S = 0.02
# Durability is worth nothing in a throwaway pair; WAL must still be written for the standby.
PRIMARY_SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "wal_level": "replica",
    "max_wal_senders": "4",
    "max_replication_slots": "4",
    "shared_buffers": "64MB",
    "max_connections": "60",
}
# A standby's own settings (the rest comes with the base backup): its socket and port, reads
# allowed during recovery ("Hot Standby", chapter 27.4), and its replay position reported to
# the primary every second rather than every 10 s (wal_receiver_status_interval), so that
# pg_stat_replication on the primary sees a caught-up standby promptly.
STANDBY_SETTINGS = {"hot_standby": "on", "hot_standby_feedback": "off", "wal_receiver_status_interval": "1s"}

T = TypeVar("T")


def poll(probe: Callable[[], T | None], what: str, timeout_s: float = WAIT_S) -> T:
    """Ask ``probe`` until it returns something truthy; it asks the server, not the clock."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(POLL_S)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StandbyPair:
    """A running primary and its streaming hot standby; ``database`` is what the URLs name."""

    primary: Cluster
    standby: Cluster
    slot_name: str
    database: str = "postgres"

    @property
    def primary_url(self) -> URL:
        return self.primary.url(self.database)

    @property
    def standby_url(self) -> URL:
        return self.standby.url(self.database)

    def primary_url_for(self, database: str) -> URL:
        return self.primary.url(database)

    def standby_url_for(self, database: str) -> URL:
        return self.standby.url(database)

    # -- replication state ----------------------------------------------------------------

    def _scalar(self, url: URL, sql: str, **params: object) -> object:
        engine = make_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                return conn.scalar(text(sql), params)
        finally:
            engine.dispose()

    def streaming(self) -> bool:
        """The standby's WAL receiver streams from the primary through our slot."""
        return bool(
            self._scalar(
                self.primary.url("postgres"),
                "SELECT count(*) FROM pg_stat_replication r JOIN pg_replication_slots s"
                " ON s.active_pid = r.pid WHERE s.slot_name = :slot AND r.state = 'streaming'",
                slot=self.slot_name,
            )
        )

    def wait_for_streaming(self) -> None:
        poll(self.streaming, "the standby to stream from the primary")

    def replay_state(self) -> str:
        """``not paused``, ``pause requested`` or ``paused`` (pg_get_wal_replay_pause_state)."""
        return str(self._scalar(self.standby.url("postgres"), "SELECT pg_get_wal_replay_pause_state()"))

    def pause_replay(self) -> None:
        """Stop applying WAL on the standby (it keeps receiving it): its replay lag then grows
        with every write on the primary ("Recovery Control Functions", 9.27.4)."""
        self._scalar(self.standby.url("postgres"), "SELECT pg_wal_replay_pause()")
        poll(lambda: self.replay_state() == "paused", "WAL replay to pause")

    def resume_replay(self) -> None:
        self._scalar(self.standby.url("postgres"), "SELECT pg_wal_replay_resume()")
        poll(lambda: self.replay_state() == "not paused", "WAL replay to resume")

    def wait_for_replay(self) -> None:
        """Wait until the standby has replayed everything the primary had written at the call."""
        # the insert position: with synchronous_commit off the last commit may not be written yet
        target = str(self._scalar(self.primary.url("postgres"), "SELECT pg_current_wal_insert_lsn()"))
        probe = "SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)"
        poll(
            lambda: self._scalar(self.standby.url("postgres"), probe, lsn=target) is True,
            "the standby to catch up",
        )

    def primary_engine(self) -> Engine:
        return make_engine(self.primary_url)


def _clone(primary: Cluster, standby: Cluster, slot_name: str) -> None:
    """``pg_basebackup -R -C -S slot`` into the standby's data directory, then its own settings."""
    standby._prepare_ownership()  # as root: a home the server user owns, to write data/ into
    standby._run(
        [
            "pg_basebackup",
            "--pgdata",
            str(standby.data_dir),
            "--host",
            str(primary.socket_dir),
            "--port",
            str(primary.port),
            "--username",
            SUPERUSER,
            "--write-recovery-conf",
            "--create-slot",
            "--slot",
            slot_name,
            "--wal-method",
            "stream",
            "--checkpoint",
            "fast",
            "--no-password",
        ]
    )
    lines = {
        "port": str(standby.port),
        "unix_socket_directories": "'" + str(standby.socket_dir).replace("'", "''") + "'",
        **STANDBY_SETTINGS,
    }
    # appended after the primary's copied settings: the last occurrence of a name wins
    with open(standby.data_dir / "postgresql.conf", "a") as conf:
        conf.write("\n# set by alp-db for the standby\n")
        conf.writelines(f"{key} = {value}\n" for key, value in lines.items())


@contextmanager
def standby_pair(
    base: Path | None = None,
    *,
    bindir: Path | None = None,
    database: str = "postgres",
    primary_settings: dict[str, str] | None = None,
    slot_name: str = SLOT_NAME,
) -> Iterator[StandbyPair]:
    """Start a primary, clone a hot standby from it through a physical slot, wait until it
    streams, and yield both; on exit stop both servers and remove their directories.

    ``database`` (created on the primary when it is not ``postgres``, and waited for on the
    standby) is the one ``primary_url`` and ``standby_url`` name.
    """
    home = Path(tempfile.mkdtemp(prefix="alp-db-pair-", dir=base))
    binaries = bindir or default_bindir()
    primary = Cluster(
        home=home / "primary",
        bindir=binaries,
        settings={**PRIMARY_SETTINGS, **(primary_settings or {})},
        port=_free_port(),
    )
    standby = Cluster(home=home / "standby", bindir=binaries, port=_free_port())
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, home, True)
        cleanup.callback(primary.destroy)
        primary.ensure_running()
        cleanup.callback(standby.destroy)  # runs first: the standby stops before its primary
        _clone(primary, standby, slot_name)
        standby.ensure_running()  # pg_ctl -w: returns once the hot standby accepts connections
        pair = StandbyPair(primary=primary, standby=standby, slot_name=slot_name, database=database)
        pair.wait_for_streaming()
        if database != "postgres":
            engine = make_engine(primary.url("postgres"), isolation_level="AUTOCOMMIT")
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql(
                        f"CREATE DATABASE {conn.dialect.identifier_preparer.quote(database)}"
                    )
            finally:
                engine.dispose()
            pair.wait_for_replay()
        yield pair
