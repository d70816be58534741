"""Library functions over Alembic's command API: upgrade, downgrade, offline SQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL

from scripts.errors import PermissionDenied, UnknownRevision
from scripts.migrations import commands
from scripts.migrations.sessions import require_schema
from scripts.project import project_home


def alembic_config(
    database_url: str | URL | None = None,
    *,
    stdout: TextIO | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """The project's alembic.ini, with the URL passed in memory (never through configparser).

    ``overrides`` are runtime settings given as options (lock_timeout, statement_timeout,
    migration_lock_wait); they beat ``-x`` and the environment (scripts.migrations.settings).
    """
    ini = project_home() / "alembic.ini"
    config = Config(str(ini), stdout=stdout) if stdout is not None else Config(str(ini))
    # errors reach alp-db callers as AlpDbError, plain alembic's as CommandError (runtime.run)
    config.attributes[commands.LIBRARY] = True
    if database_url:
        config.attributes["database_url"] = database_url
    if overrides:
        config.attributes["runtime_overrides"] = {k: v for k, v in overrides.items() if v is not None}
    return config


def script_directory(config: Config | None = None) -> ScriptDirectory:
    return ScriptDirectory.from_config(config or alembic_config())


@dataclass(frozen=True)
class MigrateResult:
    after: str | None
    applied: list[str]  # revisions applied by this run, oldest first


@contextmanager
def reading_state(url: URL) -> Iterator[None]:
    """A role that may connect but not read alembic_version / migration_history gets one line."""
    from sqlalchemy.exc import DBAPIError

    from scripts.db.engine import first_line
    from scripts.db.sqlstate import INSUFFICIENT_PRIVILEGE, privilege_hint, sqlstate

    try:
        yield
    except DBAPIError as exc:
        if sqlstate(exc) != INSUFFICIENT_PRIVILEGE:
            raise
        line = first_line(exc, url)
        raise PermissionDenied(
            f"cannot read the migration state: {line}", privilege_hint(line, url.username)
        ) from None


def current_revision(database_url: str | URL | None) -> str | None:
    from sqlalchemy import text

    from scripts.db.target import resolve_url, session

    url = resolve_url(database_url, notice=lambda _: None)
    with session(url) as conn, reading_state(url):
        require_schema(conn, url)
        if conn.scalar(text("SELECT to_regclass('alembic_version')")) is None:
            return None
        return conn.scalar(text("SELECT max(version_num) FROM alembic_version"))


def pending_revisions(database_url: str | URL | None, target: str = "head") -> list[str]:
    """The revisions an upgrade to ``target`` would apply, oldest first (a relative or unknown
    target counts as pending: the caller errs on the side of doing its preparation)."""
    from alembic.script.revision import RevisionError

    script = script_directory()
    current = current_revision(database_url)
    try:
        chain = list(script.iterate_revisions(target, current or "base"))
    except (CommandError, RevisionError):
        return [target]
    return [rev.revision for rev in reversed(chain) if rev is not None and rev.revision != current]


def migrate(
    database_url: str | URL | None = None,
    target: str = "head",
    *,
    overrides: Mapping[str, object] | None = None,
) -> MigrateResult:
    """Upgrade to ``target`` and say what was applied."""
    from scripts.db.target import resolve_url

    database_url = resolve_url(database_url)
    config = alembic_config(database_url, overrides=overrides)
    _run(command.upgrade, config, target)
    applied: list[str] = config.attributes.get("steps_done", [])
    heads = config.attributes.get("heads_after", ())
    return MigrateResult(after=max(heads) if heads else None, applied=list(applied))


def upgrade(
    database_url: str | URL | None = None,
    target: str = "head",
    *,
    sql: bool = False,
    output: TextIO | None = None,
    overrides: Mapping[str, object] | None = None,
) -> None:
    config = alembic_config(database_url, stdout=output, overrides=overrides)
    if output is not None:
        config.output_buffer = output
    _run(command.upgrade, config, target, sql=sql)


def downgrade(
    database_url: str | URL | None = None,
    target: str = "-1",
    *,
    overrides: Mapping[str, object] | None = None,
) -> list[str]:
    """Downgrade to ``target``; the revisions undone, newest first."""
    config = alembic_config(database_url, overrides=overrides)
    _run(command.downgrade, config, target)
    return list(config.attributes.get("steps_done", []))


def _run(fn: Callable[..., None], config: Config, target: str, **kwargs: object) -> None:
    # tells the runtime which command runs (scripts.migrations.commands)
    config.attributes[commands.ATTRIBUTE] = fn.__name__
    try:
        fn(config, target, **kwargs)
    except CommandError as exc:
        raise _command_error(exc, target) from None


def _command_error(exc: CommandError, target: str) -> UnknownRevision:
    return UnknownRevision(
        f"cannot move to revision {target!r}: {str(exc).splitlines()[0]}",
        "see `alp-db migration status` for the known revisions",
    )


def versions_dir() -> Path:
    return project_home() / "alembic" / "versions"
