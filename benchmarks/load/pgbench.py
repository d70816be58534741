"""The platform's traffic as a pgbench custom script, and its per-transaction log, by window.

pgbench ships with the server binaries. Each client runs, in a loop, the three statements the
platform runs most (each its own transaction; pgbench times the three together as one
"transaction"): insert an attempt at now(), read a learner's 20 latest attempts, update the
learner. ``load_keys`` (made once from the seeded rows) maps an integer to a learner, one of
their sessions and an active item, so the script needs no uuid arithmetic.

``--log`` writes one line per transaction (pgbench docs, "Per-Transaction Logging"):
``client_id transaction_no time script_no time_epoch time_us`` — ``time`` is the latency in
microseconds, ``time_epoch.time_us`` when the transaction ended.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLIENTS, THREADS = 4, 2

LOAD_KEYS = """
CREATE TABLE load_keys AS
SELECT row_number() OVER (ORDER BY s.user_id)::int AS k, s.user_id, s.session_id, i.id AS item_id
FROM (SELECT DISTINCT ON (user_id) user_id, id AS session_id FROM learning_sessions
      ORDER BY user_id, started_at DESC) s
CROSS JOIN LATERAL (SELECT id FROM items WHERE status = 'active'
                    ORDER BY id OFFSET abs(hashtext(s.user_id::text)) % 50 LIMIT 1) i;
ALTER TABLE load_keys ADD PRIMARY KEY (k);
ANALYZE load_keys;
"""

SCRIPT = r"""
\set k random(1, :nkeys)
INSERT INTO attempts (user_id, item_id, session_id, is_correct, score, response_time_ms, attempted_at)
  SELECT user_id, item_id, session_id, true, 1.0, 5000, now() FROM load_keys WHERE k = :k;
SELECT id, item_id, is_correct, attempted_at FROM attempts
  WHERE user_id = (SELECT user_id FROM load_keys WHERE k = :k) ORDER BY attempted_at DESC LIMIT 20;
UPDATE users SET updated_at = now() WHERE id = (SELECT user_id FROM load_keys WHERE k = :k);
"""

ABORTED = re.compile(r"client \d+ aborted")


@dataclass
class Window:
    """The clients' figures over one time window."""

    seconds: float
    transactions: int
    tps: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(
        cls, ended: np.ndarray, latency_us: np.ndarray, lo: float, hi: float, *, overlapping: bool
    ) -> Window:
        """Throughput from the transactions that ended in [lo, hi); latency from those inside it
        or, ``overlapping``, from every transaction that was running at some point of it — a
        client stalled by the operation finishes after it, and its wait is what counts."""
        began = ended - latency_us / 1e6
        finished = (ended >= lo) & (ended < hi)
        timed = ((began < hi) & (ended >= lo)) if overlapping else (finished & (began >= lo))
        lat = latency_us[timed] / 1000.0
        seconds = max(hi - lo, 1e-9)
        return cls(
            seconds=round(seconds, 3),
            transactions=int(finished.sum()),
            tps=round(float(finished.sum()) / seconds, 1),
            p99_ms=round(float(np.percentile(lat, 99)), 1) if len(lat) else 0.0,
            max_ms=round(float(lat.max()), 1) if len(lat) else 0.0,
        )


class Pgbench:
    """One pgbench run in the background, stopped by ``stop()``; logs in ``workdir``."""

    def __init__(
        self, bindir: Path, env: dict[str, str], workdir: Path, nkeys: int, max_seconds: int
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        script = workdir / "platform.sql"
        script.write_text(SCRIPT)
        self.stderr = (workdir / "pgbench.err").open("w")
        argv = [
            str(bindir / "pgbench"), "-n", "-M", "prepared", "-c", str(CLIENTS), "-j", str(THREADS),
            "-T", str(max_seconds), "-D", f"nkeys={nkeys}", "-f", str(script),
            "--log", f"--log-prefix={workdir / 'tx'}",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            argv, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=self.stderr
        )

    def stop(self) -> None:
        """SIGINT ends the run; the last few buffered log lines (after the windows) are lost."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stderr.close()

    def transactions(self) -> tuple[np.ndarray, np.ndarray]:
        """(end time as epoch seconds, latency in microseconds) of every logged transaction."""
        ended, latency = [], []
        for path in sorted(self.workdir.glob("tx.*")):
            for line in path.read_text().splitlines():
                fields = line.split()
                if len(fields) >= 6 and fields[2].isdigit():
                    latency.append(int(fields[2]))
                    ended.append(int(fields[4]) + int(fields[5]) / 1e6)
        return np.array(ended, dtype=float), np.array(latency, dtype=float)

    def aborted_clients(self) -> int:
        return len(ABORTED.findall((self.workdir / "pgbench.err").read_text()))

    def errors_excerpt(self) -> str:
        lines = [ln for ln in (self.workdir / "pgbench.err").read_text().splitlines() if "aborted" in ln]
        return lines[0][:200] if lines else ""


def libpq_env(host: str, port: str, user: str, database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGHOST=host, PGPORT=port, PGUSER=user, PGDATABASE=database)
    return env
