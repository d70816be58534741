"""The migration runtime that env.py hands off to, so plain ``alembic`` gets every rule.

- one migrator at a time (scripts.migrations.lock), taken only by commands that change the schema;
- ``lock_timeout`` / ``statement_timeout`` on the migration connection (scripts.migrations.settings);
- one transaction per revision; work that cannot run in one uses ``op.get_context().autocommit_block()``;
- a migration_history row per revision, in the revision's own transaction when it succeeds,
  and on the separate lock connection (outside the rolled-back transaction) when it fails.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import ExitStack
from typing import Any

from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from scripts.db.engine import connect, make_engine
from scripts.db.target import resolve_url
from scripts.db.urls import scrub
from scripts.errors import AlpDbError, ChecksumMismatch, LockTimeout, MigrationFailed, PermissionDenied
from scripts.migrations import history, revisions
from scripts.migrations import lock as locking
from scripts.migrations.settings import RuntimeSettings

# alembic.command's work functions that change the database and so take the migration lock.
MUTATING_COMMANDS = frozenset({"upgrade", "downgrade", "do_stamp", "do_ensure_version"})
# alembic.command's work functions that run revisions and so write migration_history.
MIGRATING_COMMANDS = frozenset({"upgrade", "downgrade"})
LOCK_NOT_AVAILABLE = "55P03"
INSUFFICIENT_PRIVILEGE = "42501"
ENV_ALLOW_CHANGED = "ALP_DB_ALLOW_CHANGED_REVISIONS"
QUERY_CANCELED = "57014"


def notice(message: str) -> None:
    print(f"alp-db: {message}", file=sys.stderr)


class StepTracker:
    """Follows Alembic's steps: start time of each, the one running, and its history row."""

    def __init__(self, work_fn: Callable[..., Iterable[Any]], done: list[str] | None = None) -> None:
        self.work_fn = work_fn
        self.current: Any = None
        self.started = 0.0
        self.done = done if done is not None else []  # revisions applied or undone, in order
        self.heads: set[str] = set()
        # Online, migration_history is created with the first revision (same transaction, no
        # extra commit); offline scripts create it up front.
        self.history_ready = True

    def fn(self, heads: Any, ctx: MigrationContext) -> Iterator[Any]:
        for step in self.work_fn(heads, ctx):
            self.current = step
            self.started = time.monotonic()
            yield step

    def row(self, *, success: bool, error: str | None = None, timed: bool = True) -> history.HistoryRow:
        step = self.current
        script = step.revision
        return history.HistoryRow(
            revision=script.revision,
            migration_name=history.migration_name(script.path),
            direction="upgrade" if step.is_upgrade else "downgrade",
            checksum=history.checksum(script.path),
            duration_ms=round((time.monotonic() - self.started) * 1000) if timed else None,
            success=success,
            error_message=error,
        )

    def on_version_apply(
        self, ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], *_: Any, **__: Any
    ) -> None:
        self.heads = set(heads)
        if step.is_stamp or self.current is None:
            return
        if not self.history_ready:
            history.HISTORY_TABLE.create(ctx.connection)  # type: ignore[arg-type]
            self.history_ready = True
        ctx.execute(self.row(success=True, timed=not ctx.as_sql).insert())
        self.done.append(self.current.revision.revision)


def _settings(context: EnvironmentContext) -> RuntimeSettings:
    config = context.config
    return RuntimeSettings.resolve(
        config.attributes.get("runtime_overrides"), context.get_x_argument(as_dictionary=True)
    )


def environment(context: Any) -> EnvironmentContext:
    """The EnvironmentContext behind env.py's ``alembic.context`` module proxy."""
    return context._proxy if hasattr(context, "_proxy") else context


def _work_fn(context: EnvironmentContext) -> Callable[..., Iterable[Any]]:
    """The work function of the running alembic command (``upgrade``, ``display_version``...)."""
    return environment(context).context_opts["fn"]


def _work_fn_name(context: EnvironmentContext) -> str:
    return getattr(_work_fn(context), "__name__", "")


def run_offline(context: EnvironmentContext) -> None:
    """Emit the SQL a DBA reviews and applies with ``psql -v ON_ERROR_STOP=1``.

    No models are needed (nothing is compared offline), so none are imported.
    """
    settings = _settings(context)
    url = context.config.attributes.get("database_url") or "postgresql+psycopg2://"
    command = _work_fn_name(context)
    tracker = StepTracker(_work_fn(context))
    context.configure(
        url=url,
        target_metadata=None,
        literal_binds=True,
        transaction_per_migration=True,
        dialect_opts={"paramstyle": "named"},
        on_version_apply=tracker.on_version_apply if command in MIGRATING_COMMANDS else None,
        fn=tracker.fn,
    )
    ctx = context.get_context()
    ctx.impl.static_output(f"SET lock_timeout = '{settings.lock_timeout}';")
    ctx.impl.static_output(f"SET statement_timeout = '{settings.statement_timeout}';")
    if command in MIGRATING_COMMANDS:
        for statement in history.create_statements():
            ctx.impl.static_output(statement + ";")
    context.run_migrations()


def run_online(context: EnvironmentContext) -> None:
    if revisions.plain_revision(context):  # `alembic revision` without --autogenerate: no database
        return revisions.run_plain_revision(context)
    config = context.config
    settings = _settings(context)
    command = _work_fn_name(context)
    handed: Connection | None = config.attributes.get("connection")
    url: URL = handed.engine.url if handed is not None else resolve_url(config.attributes.get("database_url"))
    engine = (
        handed.engine if handed is not None else make_engine(url, session_settings=settings.session_settings)
    )
    with ExitStack() as stack:
        lock_conn: Connection | None = None
        history_ready = False  # else created in the first revision's transaction
        if command in MUTATING_COMMANDS:
            lock_conn = stack.enter_context(connect(engine.execution_options(isolation_level="AUTOCOMMIT")))
            stack.enter_context(
                locking.advisory_lock(
                    lock_conn,
                    wait_seconds=settings.migration_lock_wait,
                    on_wait=lambda pid: notice(
                        f"waiting for another migration (backend pid {pid}) to finish"
                    ),
                )
            )
            if command in MIGRATING_COMMANDS and history.table_exists(lock_conn):
                history_ready = True
                refuse_changed_revisions(context, lock_conn)
        conn = handed if handed is not None else stack.enter_context(connect(engine))
        _migrate(context, conn, lock_conn, settings, command, url, handed, history_ready)


def _migrate(
    context: EnvironmentContext,
    conn: Connection,
    lock_conn: Connection | None,
    settings: RuntimeSettings,
    command: str,
    url: URL,
    handed: Connection | None,
    history_ready: bool,
) -> None:
    options: dict[str, Any] = {}
    if command not in MUTATING_COMMANDS:
        # comparing models (check, revision --autogenerate) needs them; running revisions does
        # not, and importing the ORM and enum plugin would slow every migration run
        from scripts.migrations.autogen import configure_options

        # tests and tools may compare other models: config.attributes["target_metadata"]
        options = configure_options(conn, context.config.attributes.get("target_metadata"))
        if handed is None:
            conn.commit()  # so that Alembic starts each revision's transaction itself
    if handed is not None:  # our own connections got the timeouts at connect time
        apply_timeouts(conn, settings)
    # callers (scripts.migrations) read back what this run did, decided under the lock
    tracker = StepTracker(_work_fn(context), context.config.attributes.setdefault("steps_done", []))
    tracker.history_ready = history_ready
    context.configure(
        connection=conn,
        transaction_per_migration=True,
        on_version_apply=tracker.on_version_apply if command in MIGRATING_COMMANDS else None,
        fn=tracker.fn,
        **options,
    )
    try:
        context.run_migrations()
        if not tracker.done:  # else on_version_apply already saw the final heads
            tracker.heads = set(context.get_context().get_current_heads())
        context.config.attributes["heads_after"] = tuple(sorted(tracker.heads))
    except DBAPIError as exc:
        error = describe_failure(exc, conn, url, settings)
        if lock_conn is not None and tracker.current is not None and command in MIGRATING_COMMANDS:
            record_failure(lock_conn, tracker.row(success=False, error=str(error)))
        raise error from exc
    except AlpDbError as exc:
        if lock_conn is not None and tracker.current is not None and command in MIGRATING_COMMANDS:
            record_failure(lock_conn, tracker.row(success=False, error=str(exc)))
        raise


def record_failure(lock_conn: Connection, row: history.HistoryRow) -> None:
    """The failed revision's row, outside its rolled-back transaction (autocommit).

    If even that is impossible (the role may not create migration_history), the original
    error is what the user needs; it is raised by the caller either way.
    """
    try:
        history.ensure_table(lock_conn)
        lock_conn.execute(row.insert())
    except DBAPIError:
        return


def refuse_changed_revisions(context: EnvironmentContext, conn: Connection) -> None:
    """Like Flyway's validate-on-migrate: an applied revision edited afterwards stops the run.

    The database no longer matches what its file says, so migrating on top of it would
    build on a lie. ``-x allow_changed_revisions=1`` (or the environment) overrides.
    """
    x_args = context.get_x_argument(as_dictionary=True)
    if x_args.get("allow_changed_revisions") or os.environ.get(ENV_ALLOW_CHANGED):
        return
    script = environment(context).script
    paths = {rev.revision: rev.path for rev in script.walk_revisions()}
    changed = history.changed_revisions(history.latest_upgrades(conn, ensured=True), paths)
    if changed:
        revision, path = changed[0]
        raise ChecksumMismatch(
            f"revision {revision} was changed after it was applied ({os.path.basename(path)})",
            "restore the file as applied (git log -p), and put the change in a new revision",
        )


def apply_timeouts(conn: Connection, settings: RuntimeSettings) -> None:
    """Session-level, so they hold in every revision's transaction and in autocommit blocks.

    For a connection handed in by the caller, whose transaction is the caller's to end.
    """
    conn.execute(
        text("SELECT set_config('lock_timeout', :lt, false), set_config('statement_timeout', :st, false)"),
        {"lt": settings.lock_timeout, "st": settings.statement_timeout},
    )


def describe_failure(exc: DBAPIError, conn: Connection, url: URL, settings: RuntimeSettings) -> AlpDbError:
    """One line for a failed revision; a lock wait that timed out names the table it waited for."""
    from scripts.migrations.blockers import held_by_others, tables_in_statement

    code = getattr(exc.orig, "pgcode", None)
    first_line = scrub(str(exc.orig).strip().splitlines()[0], url) if exc.orig else "failed"
    if code == LOCK_NOT_AVAILABLE:
        tables = tables_in_statement(exc.statement or "")
        tables = held_by_others(conn, tables) or tables
        named = ", ".join(tables) if tables else "a table"
        return LockTimeout(
            f"lock timeout: waited {settings.lock_timeout} for a lock on {named}; another session holds it",
            "find it in pg_stat_activity / pg_locks, then retry, or raise ALP_DB_LOCK_TIMEOUT",
        )
    if code == INSUFFICIENT_PRIVILEGE:
        return PermissionDenied(
            f"migration failed: {first_line}",
            f"grant the privilege to role {url.username!r}, or run migrations as the schema owner",
        )
    if code == QUERY_CANCELED:
        return MigrationFailed(
            f"statement timeout: a migration statement ran longer than {settings.statement_timeout}",
            "raise ALP_DB_STATEMENT_TIMEOUT for this run if the statement is expected to be long",
        )
    return MigrationFailed(f"migration failed: {first_line}", "nothing of that revision was kept")
