"""Lock retries, not lock queues: a revision waits a short time for its locks, and tries again.

A DDL statement waiting for ACCESS EXCLUSIVE queues every later query on that table behind it
(PostgreSQL docs, "Explicit Locking": conflicting requests are granted in order). So instead of
one long ``lock_timeout``, each attempt of a revision's transaction waits briefly — 100 ms at
first, growing to five times that — and on a lock timeout the transaction is rolled back, the
queue behind it drains, and it is run again after a pause (scripts.db.retry.Backoff), until the
revision's retry budget is spent. Only then does it fail, with the usual one line. This is the
pattern of GitLab's ``with_lock_retries`` (lib/gitlab/database/with_lock_retries.rb: timings
from 100 ms to 500 ms lock_timeout with growing sleeps in between).

A revision is re-run from the start, so only work that a rollback undoes can be retried. A
revision that enters ``op.get_context().autocommit_block()`` (itself or through a helper) has
committed work before it fails; unless it says otherwise, its statements in autocommit blocks
wait the full ``lock_timeout`` and it is not retried. A revision states its own policy with a
module-level ``lock_retries = True`` (re-running it is safe: its autocommit work is idempotent)
or ``lock_retries = False`` (never retry; every statement waits the full ``lock_timeout``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import Script
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from scripts.db.retry import Backoff
from scripts.db.sqlstate import LOCK_NOT_AVAILABLE, sqlstate
from scripts.migrations.settings import RuntimeSettings, milliseconds

GROWTH = 1.5  # each attempt waits this much longer for its locks...
CEILING_FACTOR = 5  # ...up to this many times the first attempt's wait
PAUSES = Backoff(base_s=0.05, cap_s=2.0)  # between attempts: the queue behind us drains
POLICY_ATTRIBUTE = "lock_retries"  # a revision module's own policy (True / False)


def declared_policy(script: Script | None) -> bool | None:
    module = getattr(script, "module", None)
    value = getattr(module, POLICY_ATTRIBUTE, None)
    return value if isinstance(value, bool) else None


def set_lock_timeout(conn: Connection, value: str) -> None:
    # session level (is_local false), so it holds in the revision's transaction and after
    conn.execute(text("SELECT set_config('lock_timeout', :v, false)"), {"v": value})


@dataclass
class LockRetries:
    """The retry policy of one run, and what it did (``attempts``: revision -> attempts made)."""

    settings: RuntimeSettings
    notice: Callable[[str], None]
    attempts: dict[str, int] = field(default_factory=dict)
    entered_autocommit: bool = False
    current: Script | None = None
    last_timeout: str = ""  # the lock_timeout the last statement ran with

    @property
    def enabled(self) -> bool:
        return self.settings.lock_retry_budget > 0

    def step_timeout(self, attempt: int) -> str:
        first = milliseconds(self.settings.lock_retry_timeout)
        ceiling = min(first * CEILING_FACTOR, milliseconds(self.settings.lock_timeout))
        return f"{round(min(first * GROWTH ** (attempt - 1), ceiling))}ms"

    def retries(self, script: Script | None) -> bool:
        declared = declared_policy(script)
        if not self.enabled or script is None or declared is False:
            return False
        return declared is True or not self.entered_autocommit

    def prepare(self, conn: Connection, script: Script | None, attempt: int = 1) -> None:
        """Before ``script`` runs (inside the previous revision's transaction, or before the first):
        its lock_timeout for this attempt."""
        self.current = script
        self.entered_autocommit = False
        if script is None or not self.enabled or declared_policy(script) is False:
            self.last_timeout = self.settings.lock_timeout
        else:
            self.last_timeout = self.step_timeout(attempt)
        set_lock_timeout(conn, self.last_timeout)

    def watch_autocommit(self, ctx: MigrationContext) -> None:
        """Note when a revision commits work of its own (``autocommit_block``, a public method of
        MigrationContext that ``op.get_context()`` returns), and give those statements the full
        ``lock_timeout`` unless the revision declared itself safe to retry."""
        original = ctx.autocommit_block

        @contextmanager
        def autocommit_block() -> Iterator[Any]:
            self.entered_autocommit = True
            if declared_policy(self.current) is not True:
                self.last_timeout = self.settings.lock_timeout
                set_lock_timeout(ctx.connection, self.last_timeout)  # type: ignore[arg-type]
            with original():
                yield

        ctx.autocommit_block = autocommit_block  # type: ignore[method-assign]

    def run(
        self,
        conn: Connection,
        attempt_run: Callable[[], None],
        next_revision: Callable[[], Script | None],
        *,
        can_resume: Callable[[], bool],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``attempt_run()`` (Alembic's run_migrations) until it succeeds or may not retry."""
        script = next_revision()
        attempt, started = 1, time.monotonic()
        self.prepare(conn, script)
        conn.commit()
        while True:
            try:
                attempt_run()
                return
            except DBAPIError as exc:
                if sqlstate(exc) != LOCK_NOT_AVAILABLE:
                    raise
                conn.rollback()
                failed = next_revision()  # later than ``script`` if revisions were applied meanwhile
                if failed is None or failed.revision != getattr(script, "revision", None):
                    script, attempt, started = failed, 1, time.monotonic()
                pause = PAUSES.pause(attempt)
                if not (self.retries(failed) and can_resume()) or (
                    time.monotonic() - started + pause > self.settings.lock_retry_budget
                ):
                    self.attempts[getattr(failed, "revision", "?")] = attempt
                    raise
                self.notice(
                    f"revision {failed.revision} could not take its locks within"  # type: ignore[union-attr]
                    f" {self.last_timeout} (attempt {attempt}); rolled back, retrying in {pause:.2f}s"
                )
                sleep(pause)
                attempt += 1
                self.attempts[failed.revision] = attempt  # type: ignore[union-attr]
                self.prepare(conn, failed, attempt)
                conn.commit()


def heads_of(conn: Connection, ctx: MigrationContext | None = None) -> Collection[str]:
    """The database's heads now, read on ``conn`` outside any revision's transaction."""
    heads = (ctx or MigrationContext.configure(conn)).get_current_heads()
    conn.commit()
    return heads
