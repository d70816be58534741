"""One scenario: a baseline window of the platform's load, then the same load while the
operation runs, in one pgbench run, with the lock monitor sampling throughout."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.load.monitor import LockMonitor
from benchmarks.load.pgbench import Pgbench, Window
from benchmarks.load.scenarios import Scenario

WARMUP_S = 1.0  # connections and prepared statements settle; not counted
TAIL_S = 2.0  # load after the operation, so its last transactions are logged
POLL_S = 0.02


@dataclass
class Outcome:
    key: str
    title: str
    operation_s: float  # the command, start to exit
    connected_s: float  # the part of it connected to the server: the "during" window
    exit_code: int | None  # None: killed at its budget
    output: str  # the command's last line
    baseline: dict[str, Any]
    during: dict[str, Any]
    throughput_ratio: float
    aborted_clients: int
    client_error: str
    longest_wait_on_operation_ms: float
    longest_lock_wait_ms: float
    slowest_client_statement_ms: float  # sampled: statements running > 100 ms
    slowest_statement_waits: str  # what that statement waited on, by samples
    target: str
    target_ms: float
    holds: bool


@dataclass
class Server:
    """How to reach the database under test: libpq env for pgbench, a connect() for Python."""

    bindir: Path
    host: str
    port: str
    user: str

    def env(self, database: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGHOST=self.host, PGPORT=self.port, PGUSER=self.user, PGDATABASE=database)
        return env

    def connect(self, database: str, application_name: str) -> Any:
        import psycopg2

        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, dbname=database, application_name=application_name
        )


def hold_users(server: Server, database: str, holding: threading.Event, release: threading.Event) -> None:
    """The long transaction: ACCESS SHARE on users (a plain read), open until ``release``."""
    conn = server.connect(database, "load-blocker")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM users")
            holding.set()
            release.wait(timeout=600)
        conn.rollback()
    finally:
        conn.close()


def run_operation(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    budget_s: float,
    monitor: LockMonitor,
    *,
    release: threading.Event,
    hold_s: float,
    log: Path,
) -> tuple[int | None, str]:
    """Run the command, killed past ``budget_s``; release the blocker ``hold_s`` after the
    command first connects (its interpreter start-up is not part of the blocked time)."""
    started = time.time()
    with log.open("w") as out:
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        release_at = None
        while process.poll() is None:
            now = time.time()
            if now - started > budget_s:
                process.kill()
                process.wait()
                release.set()
                return None, f"killed after its {budget_s:g} s budget"
            if release_at is None and monitor.operation_window(started, now)[0] > started:
                release_at = now + hold_s
            if release_at is not None and now >= release_at:
                release.set()
            time.sleep(POLL_S)
    release.set()
    lines = log.read_text().strip().splitlines()
    return process.returncode, lines[-1][:300] if lines else ""


def run(
    scenario: Scenario,
    server: Server,
    database: str,
    database_url: str,
    workdir: Path,
    *,
    nkeys: int,
    baseline_s: float,
) -> Outcome:
    project = scenario.project(workdir)
    monitor = LockMonitor(lambda: server.connect(database, "load-monitor"))
    monitor.start()
    limit = int(WARMUP_S + baseline_s + scenario.budget_s + scenario.blocker_s + TAIL_S + 10)
    bench = Pgbench(server.bindir, server.env(database), workdir / f"pgbench_{scenario.key}", nkeys, limit)
    started = time.time()
    blocker = None
    release = threading.Event()
    try:
        time.sleep(WARMUP_S + baseline_s)  # the baseline window (a benchmark's fixed length)
        if scenario.blocker_s:
            holding = threading.Event()
            blocker = threading.Thread(
                target=hold_users, args=(server, database, holding, release), daemon=True
            )
            blocker.start()
            holding.wait(timeout=30)
        env = {**os.environ, "DATABASE_URL": database_url, "ALP_DB_HOME": str(project)}
        op_start = time.time()
        code, output = run_operation(
            [sys.executable, "-m", "scripts", *scenario.argv], env, project, scenario.budget_s, monitor,
            release=release, hold_s=scenario.blocker_s, log=workdir / f"operation_{scenario.key}.log",
        )  # fmt: skip
        op_end = time.time()
        if blocker is not None:
            blocker.join(timeout=30)
        time.sleep(TAIL_S)
    finally:
        bench.stop()
        monitor.stop()
    ended, latency = bench.transactions()
    # "During" is while the operation is connected to the server, not its interpreter start-up.
    on_lo, on_hi = monitor.operation_window(op_start, op_end)
    base = Window.of(ended, latency, started + WARMUP_S, op_start, overlapping=False)
    during = Window.of(ended, latency, on_lo, on_hi, overlapping=True)
    on_op = monitor.longest(op_start, op_end + TAIL_S, by_operation=True)
    slowest_ms, slowest_waits = monitor.slowest(op_start, op_end + TAIL_S)
    return Outcome(
        key=scenario.key,
        title=scenario.title,
        operation_s=round(op_end - op_start, 2),
        connected_s=round(on_hi - on_lo, 2),
        exit_code=code,
        output=output,
        baseline=asdict(base),
        during=asdict(during),
        throughput_ratio=round(during.tps / base.tps, 2) if base.tps else 0.0,
        aborted_clients=bench.aborted_clients(),
        client_error=bench.errors_excerpt(),
        longest_wait_on_operation_ms=on_op,
        longest_lock_wait_ms=monitor.longest(op_start, op_end + TAIL_S, by_operation=False),
        slowest_client_statement_ms=slowest_ms,
        slowest_statement_waits=slowest_waits,
        target=scenario.target,
        target_ms=scenario.target_ms,
        holds=code == 0 and on_op <= scenario.target_ms and bench.aborted_clients() == 0,
    )
