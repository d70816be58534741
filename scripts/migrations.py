"""Library functions over Alembic's command API: upgrade, downgrade, offline SQL."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL

from alembic import command
from scripts.config import project_home
from scripts.errors import UnknownRevision


def alembic_config(database_url: str | URL | None = None, *, stdout: TextIO | None = None) -> Config:
    """The project's alembic.ini, with the URL passed in memory (never through configparser)."""
    ini = project_home() / "alembic.ini"
    config = Config(str(ini), stdout=stdout) if stdout is not None else Config(str(ini))
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def script_directory(config: Config | None = None) -> ScriptDirectory:
    return ScriptDirectory.from_config(config or alembic_config())


def upgrade(
    database_url: str | URL | None = None,
    target: str = "head",
    *,
    sql: bool = False,
    output: TextIO | None = None,
) -> None:
    config = alembic_config(database_url, stdout=output)
    if output is not None:
        config.output_buffer = output
    try:
        command.upgrade(config, target, sql=sql)
    except CommandError as exc:
        raise _command_error(exc, target) from None


def downgrade(database_url: str | URL | None = None, target: str = "-1") -> None:
    config = alembic_config(database_url)
    try:
        command.downgrade(config, target)
    except CommandError as exc:
        raise _command_error(exc, target) from None


def _command_error(exc: CommandError, target: str) -> UnknownRevision:
    return UnknownRevision(
        f"cannot move to revision {target!r}: {str(exc).splitlines()[0]}",
        "see `alp-db migration status` for the known revisions",
    )


def versions_dir() -> Path:
    return project_home() / "alembic" / "versions"
