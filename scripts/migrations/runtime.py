"""The migration runtime that env.py hands off to, so plain ``alembic`` gets every rule.

- one migrator at a time (scripts.migrations.lock), taken by every command that may change the
  schema — and by any command it cannot recognise (scripts.migrations.commands);
- ``lock_timeout`` / ``statement_timeout`` on the migration connection (scripts.migrations.settings);
- one transaction per revision; work that cannot run in one uses ``op.get_context().autocommit_block()``;
- a migration_history row per revision, in the revision's own transaction when it succeeds,
  and on the separate lock connection (outside the rolled-back transaction) when it fails.

Only public Alembic API is used: the ``alembic.context`` functions, ``on_version_apply`` and its
``MigrationInfo``, ``MigrationContext.configure`` and ``ScriptDirectory``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection
from contextlib import ExitStack
from typing import Any

from alembic.runtime.environment import EnvironmentContext
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError

from scripts.db import sqlstate
from scripts.db.engine import connect, connection_lost, first_line, make_engine
from scripts.db.target import resolve_url
from scripts.errors import (
    AlpDbError,
    ChecksumMismatch,
    ConnectionLost,
    LockTimeout,
    MigrationFailed,
    PermissionDenied,
)
from scripts.migrations import history, replicas, revisions, sessions
from scripts.migrations import lock as locking
from scripts.migrations.commands import LIBRARY, Command, recognise
from scripts.migrations.lock_retries import LockRetries, StepHooks, heads_of
from scripts.migrations.reversibility import refuse_irreversible, undo_plan
from scripts.migrations.settings import RuntimeSettings
from scripts.migrations.steps import Steps

ENV_ALLOW_CHANGED = "ALP_DB_ALLOW_CHANGED_REVISIONS"


def notice(message: str) -> None:
    print(f"alp-db: {message}", file=sys.stderr)


def run(context: Any) -> None:
    """env.py's one call. Under plain ``alembic`` an AlpDbError becomes a CommandError, which
    Alembic prints as ``FAILED: <message>`` without a traceback (alembic.config.CommandLine);
    the alp-db library (whose configs carry ``config.attributes["alp_db_library"]``) gets it as is."""
    try:
        if context.is_offline_mode():
            run_offline(context)
        else:
            run_online(context)
    except AlpDbError as exc:
        if context.config.attributes.get(LIBRARY):
            raise
        raise CommandError(str(exc)) from exc


def direction_towards(context: EnvironmentContext, heads: Collection[str]) -> str | None:
    """'upgrade' or 'downgrade': where the destination (``get_revision_argument``) lies from
    ``heads``, for a command the runtime could not name. None when it cannot be told."""
    try:
        destination = context.get_revision_argument()
    except (KeyError, CommandError):  # a command without a destination
        return None
    if isinstance(destination, str) and destination[:1] in ("+", "-"):
        return "upgrade" if destination.startswith("+") else "downgrade"
    if destination is None:
        return "downgrade"  # base
    if not heads:
        return "upgrade"
    wanted = set(destination) if isinstance(destination, tuple) else {destination}
    below = {rev.revision for head in heads for rev in context.script.iterate_revisions(head, "base") if rev}
    return "downgrade" if wanted <= below and not wanted <= set(heads) else "upgrade"


def _settings(context: EnvironmentContext) -> RuntimeSettings:
    config = context.config
    return RuntimeSettings.resolve(
        config.attributes.get("runtime_overrides"), context.get_x_argument(as_dictionary=True)
    )


def run_offline(context: EnvironmentContext) -> None:
    """Emit the SQL a DBA reviews and applies with ``psql -v ON_ERROR_STOP=1``.

    No models are needed (nothing is compared offline), so none are imported.
    """
    settings = _settings(context)
    url = context.config.attributes.get("database_url") or "postgresql+psycopg2://"
    command = recognise(context.config)
    steps = Steps(context.script, direction=command.direction, heads=(), done=[])
    context.configure(
        url=url,
        target_metadata=None,
        literal_binds=True,
        transaction_per_migration=True,
        dialect_opts={"paramstyle": "named"},
        on_version_apply=steps.on_version_apply if command.runs_revisions else None,
    )
    ctx = context.get_context()
    if command.runs_revisions:
        from scripts.migrations.plan_offline import head_blocks_with_plan

        head_blocks_with_plan(context, ctx)  # only with -x plan=1
    ctx.impl.static_output(f"SET lock_timeout = '{settings.lock_timeout}';")
    ctx.impl.static_output(f"SET statement_timeout = '{settings.statement_timeout}';")
    if command.runs_revisions:
        for statement in history.create_statements():
            ctx.impl.static_output(statement + ";")
    context.run_migrations()


def run_online(context: EnvironmentContext) -> None:
    if revisions.plain_revision(context):  # `alembic revision` without --autogenerate: no database
        return revisions.run_plain_revision(context)
    config = context.config
    settings = _settings(context)
    command = recognise(config)
    handed = config.attributes.get("connection")
    # a Connection is used as is (Alembic cookbook, "Sharing a Connection"); an Engine
    # (pytest-alembic hands one) is connected here, and left for its owner to dispose
    handed_conn = handed if isinstance(handed, Connection) else None
    if handed_conn is not None:
        engine: Engine = handed_conn.engine
    elif isinstance(handed, Engine):
        engine = handed
    else:
        engine = make_engine(
            resolve_url(config.attributes.get("database_url")), session_settings=settings.session_settings
        )
    url = engine.url
    with ExitStack() as stack:
        if handed is None:
            stack.callback(engine.dispose)
        lock_conn: Connection | None = None
        standbys = False  # any streaming from the primary when the run began
        history_ready = False  # else created in the first revision's transaction
        try:
            if command.changes_schema:
                lock_conn = stack.enter_context(
                    connect(engine.execution_options(isolation_level="AUTOCOMMIT"))
                )
                standbys = replicas.refuse_standby(lock_conn, url)  # before anything is touched
                sessions.require_schema(lock_conn, url)
                stack.enter_context(
                    locking.advisory_lock(
                        lock_conn,
                        wait_seconds=settings.migration_lock_wait,
                        on_wait=lambda pid: notice(
                            f"waiting for another migration (backend pid {pid}) to finish"
                        ),
                    )
                )
                sessions.wait_for_earlier_migrations(
                    lock_conn, wait_seconds=settings.migration_lock_wait, notice=notice
                )
                if command.runs_revisions and history.table_exists(lock_conn):
                    history_ready = True
                    for revision in history.record_interrupted(lock_conn):
                        notice(f"revision {revision} was interrupted by an earlier run: recorded")
                    refuse_changed_revisions(context, lock_conn)
            conn = handed_conn if handed_conn is not None else stack.enter_context(connect(engine))
            if handed is not None:  # our own engine sends the timeouts at connect time
                apply_timeouts(conn, settings)
            if command.runs_revisions:
                sessions.prepare_migration_session(conn)
        except DBAPIError as exc:
            raise describe_failure(exc, url, settings) from None
        _migrate(
            context, conn, lock_conn, settings, command, handed_conn is not None, history_ready, standbys
        )


def _migrate(
    context: EnvironmentContext,
    conn: Connection,
    lock_conn: Connection | None,
    settings: RuntimeSettings,
    command: Command,
    shared: bool,
    history_ready: bool,
    standbys: bool,
) -> None:
    options: dict[str, Any] = {}
    if command.compares_models:
        # comparing models (check, revision --autogenerate) needs them; running revisions does
        # not, and importing the ORM and enum plugin would slow every migration run
        from scripts.migrations.autogen import configure_options

        # tests and tools may compare other models: config.attributes["target_metadata"]
        options = configure_options(conn, context.config.attributes.get("target_metadata"))
    if not shared:
        conn.commit()  # so that Alembic starts each revision's transaction itself
    # callers (scripts.migrations.api) read back what this run did, decided under the lock
    done = context.config.attributes.setdefault("steps_done", [])
    steps = Steps(
        context.script,
        direction=command.direction,
        heads=(),
        done=done,
        conn=None if shared else conn,
        lock_conn=lock_conn,
        history_ready=history_ready,
        after_heavy=(
            (
                lambda revision: replicas.after_heavy_revision(
                    lock_conn, revision, wait_seconds=settings.wait_for_replicas, notice=notice
                )
            )
            if lock_conn is not None and standbys
            else None
        ),
    )
    context.configure(
        connection=conn,
        transaction_per_migration=True,
        on_version_apply=steps.on_version_apply if command.runs_revisions else None,
        **options,
    )
    if not command.runs_revisions:
        context.run_migrations()
        context.config.attributes["heads_after"] = tuple(sorted(context.get_context().get_current_heads()))
        return
    steps.heads = set(heads_of(conn, context.get_context(), commit=not shared))
    steps.direction = command.direction or direction_towards(context, steps.heads)
    if steps.direction == "downgrade":  # refused before anything is undone, as rollback does
        refuse_irreversible(undo_plan(context.script, steps.heads, destination(context)))
    # a connection handed in is in its owner's transaction: no commits, so no retries
    retries = LockRetries(settings, notice) if steps.direction and not shared else None
    steps.retries = retries
    StepHooks(
        context.get_context(),
        on_start=steps.on_start,
        on_autocommit=(lambda: retries.on_autocommit(conn)) if retries is not None else (lambda: None),
    )
    try:
        if retries is None:
            context.run_migrations()
        else:
            retries.run(
                conn,
                context.run_migrations,
                can_resume=lambda: not (steps.done and relative_destination(context)),
            )
        steps.between_revisions()  # the last revision's standbys
        final = steps.heads if steps.done else set(context.get_context().get_current_heads())
        context.config.attributes["heads_after"] = tuple(sorted(final))
    except DBAPIError as exc:
        error = describe_failure(exc, conn.engine.url, settings, conn, retries)
        steps.record_failure(str(error))
        raise error from exc
    except AlpDbError as exc:
        steps.record_failure(str(exc))
        raise


def destination(context: EnvironmentContext) -> Any:
    """The command's destination revision (public ``get_revision_argument``), if it has one."""
    try:
        return context.get_revision_argument()
    except (KeyError, CommandError):
        return ()


def relative_destination(context: EnvironmentContext) -> bool:
    """``+2`` / ``-1`` / ``0003-1``: re-running after progress would overshoot, so no retry."""
    try:
        destination = context.get_revision_argument()
    except (KeyError, CommandError):
        return True
    return isinstance(destination, str) and ("+" in destination or "-" in destination)


def refuse_changed_revisions(context: EnvironmentContext, conn: Connection) -> None:
    """Like Flyway's validate-on-migrate: an applied revision edited afterwards stops the run.

    The database no longer matches what its file says, so migrating on top of it would
    build on a lie. ``-x allow_changed_revisions=1`` (or the environment) overrides.
    """
    x_args = context.get_x_argument(as_dictionary=True)
    if x_args.get("allow_changed_revisions") or os.environ.get(ENV_ALLOW_CHANGED):
        return
    paths = {rev.revision: rev.path for rev in context.script.walk_revisions()}
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


def describe_failure(
    exc: DBAPIError,
    url: URL,
    settings: RuntimeSettings,
    conn: Connection | None = None,
    retries: LockRetries | None = None,
) -> AlpDbError:
    """One line for a failed revision; a lock wait that timed out names the table it waited for."""
    from scripts.migrations.blockers import held_by_others, tables_in_statement

    code = sqlstate.sqlstate(exc)
    line = first_line(exc, url)
    if connection_lost(exc):  # a server restart, a terminated backend, a broken network
        return ConnectionLost(
            f"lost the connection to the database during a migration: {line}",
            "nothing of the running revision was kept (its transaction ended with the session);"
            " once the server is back, run the same command again: it goes on from the last applied"
            " revision",
        )
    if code == sqlstate.LOCK_NOT_AVAILABLE:
        tables = tables_in_statement(exc.statement or "")
        if conn is not None:
            tables = held_by_others(conn, tables) or tables
        named = ", ".join(map(str, tables)) if tables else "a table"
        if retries is not None and retries.attempt > 1:
            return LockTimeout(
                f"lock timeout: {retries.attempt} attempts over the"
                f" {settings.lock_retry_budget:g}s retry budget could not lock {named}"
                f" (the last waited {retries.last_timeout});"
                " another session holds it",
                "find it in pg_stat_activity / pg_locks, then retry, or raise ALP_DB_LOCK_RETRY_BUDGET",
            )
        waited = retries.last_timeout if retries is not None else settings.lock_timeout
        return LockTimeout(
            f"lock timeout: waited {waited} for a lock on {named}; another session holds it",
            "find it in pg_stat_activity / pg_locks, then retry, or raise ALP_DB_LOCK_TIMEOUT",
        )
    if code == sqlstate.INSUFFICIENT_PRIVILEGE:
        return PermissionDenied(
            f"migration failed: {line}",
            sqlstate.privilege_hint(line, url.username),
        )
    if code == sqlstate.QUERY_CANCELED:
        return MigrationFailed(
            f"statement timeout: a migration statement ran longer than {settings.statement_timeout}",
            "raise ALP_DB_STATEMENT_TIMEOUT for this run if the statement is expected to be long",
        )
    return MigrationFailed(f"migration failed: {line}", "nothing of that revision was kept")
