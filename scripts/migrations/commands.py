"""Which Alembic command is running, told from what Alembic makes public; unknown fails closed.

The runtime must know whether a run changes the schema (take the migration lock, refuse
edited revisions, write migration_history) or only compares models (needs the ORM metadata).
It learns this from, in order:

1. ``config.attributes["alp_db_command"]``, set by the alp-db library (scripts.migrations.api);
2. ``config.cmd_opts.cmd``, which the ``alembic`` command line sets to the function of
   ``alembic.command`` it runs (``CommandLine.register_command``: ``set_defaults(cmd=(fn, ...))``);
3. nothing else: a program calling ``alembic.command.upgrade(config, ...)`` itself
   (pytest-alembic, a deployment script) is *unknown*, and unknown is treated as a command that
   changes the schema and compares models both: the lock is taken, history written, and the
   models offered. A renamed or new Alembic command can cost a lock, never skip one.

tests/test_alembic_contract.py fails loudly when a supported Alembic changes any of this.
"""

from __future__ import annotations

import enum
from typing import Any

from alembic import command as alembic_command
from alembic.config import Config

ATTRIBUTE = "alp_db_command"  # config.attributes key the library sets: the command it runs
LIBRARY = "alp_db_library"  # config.attributes key: the config is alp-db's (api.alembic_config)


class Kind(enum.Enum):
    MIGRATE = "migrate"  # runs revisions: lock, checksum refusal, migration_history
    STAMP = "stamp"  # writes alembic_version only: lock
    COMPARE = "compare"  # compares models with the database (check, revision --autogenerate)
    READ = "read"  # reads the database, changes nothing (current, history, heads...)
    UNKNOWN = "unknown"  # all of the above: fail closed


# Every public function of alembic.command, by what it does to the database. A new Alembic
# command is caught by the contract test, which requires every one of them to be listed here.
KNOWN: dict[str, Kind] = {
    "upgrade": Kind.MIGRATE,
    "downgrade": Kind.MIGRATE,
    "stamp": Kind.STAMP,
    "ensure_version": Kind.STAMP,
    "check": Kind.COMPARE,
    "revision": Kind.COMPARE,
    "merge": Kind.COMPARE,  # runs env.py only for process_revision_directives
    "current": Kind.READ,
    "show": Kind.READ,
    "history": Kind.READ,
    "heads": Kind.READ,
    "branches": Kind.READ,
    "edit": Kind.READ,
    "init": Kind.READ,
    "list_templates": Kind.READ,
}


class Command:
    """The running command's name and kind; ``name`` is None when it could not be told."""

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.kind = KNOWN.get(name, Kind.UNKNOWN) if name else Kind.UNKNOWN

    @property
    def changes_schema(self) -> bool:
        return self.kind in (Kind.MIGRATE, Kind.STAMP, Kind.UNKNOWN)

    @property
    def runs_revisions(self) -> bool:
        return self.kind in (Kind.MIGRATE, Kind.UNKNOWN)

    @property
    def compares_models(self) -> bool:
        return self.kind in (Kind.COMPARE, Kind.UNKNOWN)

    @property
    def direction(self) -> str | None:
        """'upgrade' or 'downgrade' where the command says so."""
        return self.name if self.name in ("upgrade", "downgrade") else None

    def __repr__(self) -> str:
        return f"Command({self.name!r}, {self.kind.value})"


def from_cli(cmd_opts: Any) -> str | None:
    """The ``alembic.command`` function the alembic command line was asked to run."""
    cmd = getattr(cmd_opts, "cmd", None)
    if not isinstance(cmd, tuple) or not cmd:
        return None
    fn = cmd[0]
    name = getattr(fn, "__name__", None)
    # only a function of alembic.command counts: a wrapper of someone else's is unknown
    return name if name in KNOWN and getattr(alembic_command, name, None) is fn else None


def recognise(config: Config) -> Command:
    named = config.attributes.get(ATTRIBUTE)
    if isinstance(named, str) and named in KNOWN:
        return Command(named)
    return Command(from_cli(config.cmd_opts))
