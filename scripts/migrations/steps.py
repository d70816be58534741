"""One run's revisions as they start, succeed and fail: history rows, lock retries, what was done."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any, cast

from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script, ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from scripts.migrations import history
from scripts.migrations.lock_retries import LockRetries
from scripts.migrations.replicas import took_access_exclusive
from scripts.migrations.reversibility import refuse_irreversible


def row_for(
    script: Script, direction: str, *, success: bool, duration_ms: int | None, error: str | None = None
) -> history.HistoryRow:
    return history.HistoryRow(
        revision=script.revision,
        migration_name=history.migration_name(script.path),
        direction=direction,
        checksum=history.checksum(script.path),
        duration_ms=duration_ms,
        success=success,
        error_message=error,
    )


def running_revision(script: ScriptDirectory, heads: Collection[str], direction: str | None) -> Script | None:
    """The revision a run at ``heads`` works on next: the head itself when undoing, its one
    child when applying (None where the history branches and it cannot be told)."""
    if direction == "downgrade":
        return script.get_revision(next(iter(heads))) if len(heads) == 1 else None
    if direction == "upgrade":
        following = (
            list(script.get_bases())
            if not heads
            else [child for head in heads for child in script.get_revision(head).nextrev]
        )
        return script.get_revision(following[0]) if len(following) == 1 else None
    return None


class Steps:
    """Follows a run step by step.

    ``on_start`` runs before each revision's transaction (scripts.migrations.lock_retries.StepHooks),
    ``on_version_apply`` inside it once the revision is done (Alembic's public callback).
    With a lock connection, a revision's history row is written as "running" before it starts,
    so that a migrator killed in the middle leaves a trace the next one records.
    """

    def __init__(
        self,
        script: ScriptDirectory,
        *,
        direction: str | None,
        heads: Collection[str],
        done: list[str],
        conn: Connection | None = None,
        lock_conn: Connection | None = None,
        retries: LockRetries | None = None,
        history_ready: bool = True,
        after_heavy: Callable[[str], object] | None = None,
    ) -> None:
        self.after_heavy = after_heavy  # called between revisions after one took ACCESS EXCLUSIVE
        self.heavy: str | None = None
        self.script = script
        self.direction = direction
        self.heads = set(heads)
        self.done = done  # revisions applied or undone, in order
        self.conn = conn  # the migration connection, when ours to commit between revisions
        self.lock_conn = lock_conn
        self.retries = retries
        # Without a lock connection, migration_history is created in the first revision's
        # transaction (no extra commit); offline scripts create it up front.
        self.history_ready = history_ready
        self.current: Script | None = None
        self.running_id: int | None = None
        self.mark = time.monotonic()

    def elapsed_ms(self) -> int:
        return round((time.monotonic() - self.mark) * 1000)

    def between_revisions(self) -> None:
        """After a heavy revision committed: the standbys (scripts.migrations.replicas)."""
        heavy, self.heavy = self.heavy, None
        if heavy is not None and self.after_heavy is not None:
            self.after_heavy(heavy)

    def on_start(self) -> None:
        self.between_revisions()
        script = running_revision(self.script, self.heads, self.direction)
        if script is not None and self.direction == "downgrade":
            refuse_irreversible([script])  # where the plan could not be told up front
        if self.conn is not None and self.retries is not None:
            self.retries.on_step_start(self.conn, script)
        if script is not None and (self.current is None or script.revision != self.current.revision):
            self.mark = time.monotonic()
            self.running_id = None
            if self.lock_conn is not None and self.direction is not None:
                if not self.history_ready:  # one catalog look per run, not per revision
                    history.ensure_table(self.lock_conn)
                    self.history_ready = True
                row = row_for(script, self.direction, success=False, duration_ms=None)
                self.running_id = history.start(self.lock_conn, row)
        self.current = script
        if self.conn is not None:
            self.conn.commit()  # so that Alembic begins the revision's transaction itself

    def on_version_apply(
        self, ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], *_: Any, **__: Any
    ) -> None:
        self.heads = set(heads)
        script = cast("Script | None", step.up_revision)  # a Script: ScriptDirectory's map
        if step.is_stamp or script is None:
            return
        if not self.history_ready:
            history.HISTORY_TABLE.create(ctx.connection)  # type: ignore[arg-type]
            self.history_ready = True
        direction = "upgrade" if step.is_upgrade else "downgrade"
        row = row_for(script, direction, success=True, duration_ms=None if ctx.as_sql else self.elapsed_ms())
        if self.after_heavy is not None and not ctx.as_sql and took_access_exclusive(ctx.connection):  # type: ignore[arg-type]
            self.heavy = script.revision
        ours = self.running_id is not None and self.current is not None
        if ours and self.current.revision == script.revision:  # type: ignore[union-attr]
            ctx.execute(row.replace(self.running_id))  # type: ignore[arg-type]
        else:
            ctx.execute(row.insert())
        self.running_id = None
        self.done.append(script.revision)
        self.mark = time.monotonic()

    def record_failure(self, message: str) -> None:
        """The failed revision's row, outside its rolled-back transaction (autocommit).

        If even that is impossible (the role may not create migration_history), the original
        error is what the user needs; it is raised by the caller either way.
        """
        if self.lock_conn is None or self.current is None or self.direction is None:
            return
        row = row_for(
            self.current, self.direction, success=False, duration_ms=self.elapsed_ms(), error=message
        )
        try:
            if self.running_id is not None:
                self.lock_conn.execute(row.replace(self.running_id))
            else:
                history.ensure_table(self.lock_conn)
                self.lock_conn.execute(row.insert())
        except DBAPIError:
            return
