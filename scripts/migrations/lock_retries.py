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
from dataclasses import dataclass
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
    """The retry policy of one run and where it stands: the revision running, its attempt."""

    settings: RuntimeSettings
    notice: Callable[[str], None]
    current: Script | None = None
    attempt: int = 1
    started: float = 0.0
    entered_autocommit: bool = False
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

    def on_step_start(self, conn: Connection, script: Script | None) -> None:
        """Before a revision's transaction begins: its lock_timeout for this attempt."""
        if script is None or self.current is None or script.revision != self.current.revision:
            self.current, self.attempt, self.started = script, 1, time.monotonic()
        self.entered_autocommit = False
        if script is None or not self.enabled or declared_policy(script) is False:
            self.last_timeout = self.settings.lock_timeout
        else:
            self.last_timeout = self.step_timeout(self.attempt)
        set_lock_timeout(conn, self.last_timeout)

    def on_autocommit(self, conn: Connection) -> None:
        """The revision commits work of its own: give its statements there the full
        ``lock_timeout``, unless it declared itself safe to retry."""
        self.entered_autocommit = True
        if declared_policy(self.current) is not True:
            self.last_timeout = self.settings.lock_timeout
            set_lock_timeout(conn, self.last_timeout)

    def run(
        self,
        conn: Connection,
        attempt_run: Callable[[], None],
        *,
        can_resume: Callable[[], bool],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``attempt_run()`` (Alembic's run_migrations) until it succeeds or may not retry."""
        while True:
            try:
                attempt_run()
                return
            except DBAPIError as exc:
                if sqlstate(exc) != LOCK_NOT_AVAILABLE:
                    raise
                conn.rollback()
                failed = self.current
                pause = PAUSES.pause(self.attempt)
                if (
                    failed is None
                    or not (self.retries(failed) and can_resume())
                    or time.monotonic() - self.started + pause > self.settings.lock_retry_budget
                ):
                    raise
                self.notice(
                    f"revision {failed.revision} could not take its locks within {self.last_timeout}"
                    f" (attempt {self.attempt}); rolled back, retrying in {pause:.2f}s"
                )
                sleep(pause)
                self.attempt += 1


class StepHooks:
    """Calls ``on_start`` before each revision's transaction and ``on_autocommit`` when a revision
    enters ``autocommit_block()``, by wrapping those two public methods of the MigrationContext
    (``op.get_context()`` returns the same object). Alembic offers no hook at the start of a step;
    with ``transaction_per_migration`` it begins one transaction per revision, and this env.py
    begins none of its own (tests/test_alembic_contract.py pins both)."""

    def __init__(
        self,
        ctx: MigrationContext,
        on_start: Callable[[], None],
        on_autocommit: Callable[[], None],
    ) -> None:
        begin, autocommit = ctx.begin_transaction, ctx.autocommit_block

        def begin_transaction(*args: Any, **kwargs: Any) -> Any:
            on_start()
            return begin(*args, **kwargs)

        @contextmanager
        def autocommit_block() -> Iterator[Any]:
            on_autocommit()
            with autocommit():
                yield

        ctx.begin_transaction = begin_transaction  # type: ignore[method-assign]
        ctx.autocommit_block = autocommit_block  # type: ignore[method-assign]


def heads_of(conn: Connection, ctx: MigrationContext, *, commit: bool = True) -> Collection[str]:
    """The database's heads now, read on ``conn`` outside any revision's transaction."""
    heads = ctx.get_current_heads()
    if commit:
        conn.commit()
    return heads
