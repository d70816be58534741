"""Lock waits the clients suffer, sampled from pg_locks every SAMPLE_S by a monitor thread.

For each pgbench backend waiting on a lock (pg_stat_activity.wait_event_type = 'Lock'), the
sample records how long it has waited (pg_locks.waitstart, PostgreSQL 14+) and who blocks it
(pg_blocking_pids(): the holders of a conflicting lock and the requests queued ahead of it,
so a client stuck behind a DDL statement that itself waits names that statement). A wait is
charged to the operation when a blocker is an alp-db backend (application_name 'alp-db').
The longest such wait is the figure the targets are about; sampling makes it exact to SAMPLE_S.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

SAMPLE_S = 0.02
OPERATION_APP = "alp-db"

# When the operation is connected: its window on the server, without interpreter start-up.
OPERATION_CONNECTED = """
SELECT count(*), string_agg(left(regexp_replace(query, '\\s+', ' ', 'g'), 50), ' | ')
FROM pg_stat_activity
WHERE application_name LIKE %(op)s AND datname = current_database() AND pid <> pg_backend_pid()
  AND backend_type = 'client backend'
"""
WAITERS = """
SELECT a.pid, extract(epoch FROM clock_timestamp() - l.waitstart)::float8,
       coalesce((SELECT bool_or(b.application_name LIKE %(op)s) FROM pg_stat_activity b
                 WHERE b.pid = ANY (pg_blocking_pids(a.pid))), false)
FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
WHERE a.application_name = 'pgbench' AND a.wait_event_type = 'Lock' AND l.waitstart IS NOT NULL
"""

# Client statements running long, whatever they wait on (a lock, WAL flush, I/O, or nothing:
# CPU), so a latency spike that is no lock wait still says where the time went.
SLOW_CLIENTS = """
SELECT a.pid, extract(epoch FROM clock_timestamp() - a.query_start)::float8,
       coalesce(a.wait_event_type || ':' || a.wait_event, 'CPU')
FROM pg_stat_activity a
WHERE a.application_name = 'pgbench' AND a.state = 'active'
  AND clock_timestamp() - a.query_start > interval '100 milliseconds'
"""


@dataclass
class LockMonitor:
    """Samples in a thread between start() and stop(); ``samples``: (time, pid, waited s, by op)."""

    connect: Any  # () -> a DB-API connection
    samples: list[tuple[float, int, float, bool]] = field(default_factory=list)
    connected: list[float] = field(default_factory=list)  # times an operation backend was there
    slow: list[tuple[float, int, float, str]] = field(default_factory=list)  # (time, pid, s, wait)
    doing: list[tuple[float, str]] = field(default_factory=list)  # (time, the operation's statements)

    def start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lock-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        conn = self.connect()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                while not self._stop.is_set():
                    cur.execute(WAITERS, {"op": OPERATION_APP + "%"})
                    now = time.time()
                    self.samples.extend((now, pid, waited, by_op) for pid, waited, by_op in cur.fetchall())
                    cur.execute(SLOW_CLIENTS)
                    self.slow.extend((now, pid, s, wait) for pid, s, wait in cur.fetchall())
                    cur.execute(OPERATION_CONNECTED, {"op": OPERATION_APP + "%"})
                    count, doing = cur.fetchone()
                    if count:
                        self.connected.append(now)
                        self.doing.append((now, doing or ""))
                    self._stop.wait(SAMPLE_S)
        finally:
            conn.close()

    def operation_window(self, lo: float, hi: float) -> tuple[float, float]:
        """First and last sample in [lo, hi] with the operation connected; (lo, hi) if none."""
        seen = [t for t in self.connected if lo <= t <= hi]
        return (min(seen), max(seen) + SAMPLE_S) if seen else (lo, hi)

    def longest(self, lo: float, hi: float, *, by_operation: bool) -> float:
        """The longest wait (ms) seen in [lo, hi], on the operation's locks or on any lock."""
        waits = [w for t, _, w, op in self.samples if lo <= t <= hi and (op or not by_operation)]
        return round(max(waits, default=0.0) * 1000, 1)

    def slowest(self, lo: float, hi: float) -> tuple[float, str]:
        """The longest-running client statement seen in [lo, hi] (ms) and what it waited on
        while sampled (e.g. "Lock:relation 3, IO:WALSync 2, CPU 5"); (0, "") if none ran long."""
        seen = [(w, pid, t) for t, pid, w, _ in self.slow if lo <= t <= hi]
        if not seen:
            return 0.0, ""
        longest, pid, at = max(seen)
        start = at - longest
        counts: dict[str, int] = {}
        for t, p, _, wait in self.slow:
            if p == pid and start <= t <= at:
                counts[wait] = counts.get(wait, 0) + 1
        waits = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        # what the operation was running meanwhile, the statement seen most often
        seen_doing: dict[str, int] = {}
        for t, doing in self.doing:
            if start <= t <= at:
                seen_doing[doing] = seen_doing.get(doing, 0) + 1
        if seen_doing:
            waits += "; the operation ran: " + max(seen_doing.items(), key=lambda kv: kv[1])[0]
        return round(longest * 1000, 1), waits
