"""Pausing a running data migration while the database's health signals are over their limits.

Before each batch the runner asks :meth:`Throttle.wait`, which reads the signals when
``check_interval_s`` has passed since it last did (always before the first batch); while a
signal is over its limit
(health.py) the run waits, re-reading the signals every ``poll_s``, with the reason in its
checkpoint row (``data-migration status`` shows it) and a progress line when it pauses and
when it goes on. The waits poll the server for a state it reports, so the run goes on as
soon as the standby has caught up or autovacuum has finished, and stops at ``max_runtime``
even while paused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from scripts.backfill.checkpoints import set_paused
from scripts.backfill.health import HealthLimits, read_signals, reasons
from scripts.backfill.progress import Reporter


@dataclass
class Throttle:
    conn: Connection
    name: str
    table: str
    table_oid: int
    limits: HealthLimits
    reporter: Reporter
    pauses: int = 0
    paused_s: float = 0.0
    reads: int = 0  # times the signals were read
    _last_read: float | None = None  # monotonic

    def _due(self) -> bool:
        now = time.monotonic()
        if self._last_read is not None and now - self._last_read < self.limits.check_interval_s:
            return False
        self._last_read = now
        return True

    def _why(self) -> str:
        self.reads += 1
        return "; ".join(reasons(read_signals(self.conn, self.table_oid), self.limits, self.table))

    def wait(self, deadline: float | None) -> bool:
        """Return True once every signal is within its limit, False at ``deadline`` (monotonic)."""
        if not self.limits.enabled or not self._due():
            return True
        why = self._why()
        if not why:
            return True
        self.pauses += 1
        began = time.monotonic()
        set_paused(self.conn, self.name, why)
        self.reporter.pause(f"paused: {why}")
        try:
            while why:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    return False
                # waiting for the server's state to change, re-read from the server each time
                time.sleep(
                    self.limits.poll_s if deadline is None else min(self.limits.poll_s, deadline - now)
                )
                latest = self._why()
                if latest and latest != why:
                    set_paused(self.conn, self.name, latest)
                why = latest
        finally:
            waited = time.monotonic() - began
            self.paused_s += waited
            if not self.conn.invalidated:
                set_paused(self.conn, self.name, None)
        self.reporter.pause(f"going on after {waited:.1f}s paused")
        return True
