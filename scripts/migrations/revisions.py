"""``migration generate``: the next four-digit revision, named for what it does."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL

from scripts.errors import ConfigError
from scripts.migrations.api import alembic_config, script_directory

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")
# Names that say nothing about the change (the guide's own counter-examples and kin).
VAGUE_NAMES = frozenset(
    {
        "update_schema", "fix_bug", "fix_bugs", "bug_fix", "bugfix", "schema_update", "update_db",
        "db_update", "fix_schema", "new_migration", "migration", "changes", "misc_changes", "misc",
        "temp", "tmp", "test", "wip", "stuff", "update", "fix", "hotfix", "patch", "changes_1",
        "update_tables", "fix_tables", "new_changes", "database_changes", "schema_changes",
    }
)  # fmt: skip
# The project's revision ids: four digits or more, counting up (0001, 0002, ...). Alembic's own
# are 12 hex characters (the end of a uuid4), all digits about once in 280 revisions, so being
# digits alone does not make an id the project's.
NUMBERED_ID = re.compile(r"[0-9]{4,11}")
NAME_HINT = "describe the change in snake_case, e.g. add_user_preferences_table"
MAX_NAME = 60


def validate_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise ConfigError("a migration name is required", NAME_HINT)
    if len(cleaned) > MAX_NAME:
        raise ConfigError(f"migration name is longer than {MAX_NAME} characters", NAME_HINT)
    if not SNAKE_CASE.match(cleaned):
        raise ConfigError(
            f"migration name {cleaned!r} is not snake_case (two or more lower-case words)", NAME_HINT
        )
    if cleaned in VAGUE_NAMES:
        raise ConfigError(f"migration name {cleaned!r} does not say what the migration does", NAME_HINT)
    return cleaned


def next_revision_id(script: ScriptDirectory | None = None) -> str:
    revisions = (script or script_directory()).walk_revisions()
    numbers = [int(rev.revision) for rev in revisions if NUMBERED_ID.fullmatch(rev.revision)]
    return f"{max(numbers, default=0) + 1:04d}"


def number_revision(context: MigrationContext, revision: object, directives: list[Any]) -> None:
    """``process_revision_directives`` for plain ``alembic revision --autogenerate``.

    Gives the new revision the next four-digit id (Alembic would pick a random hex one) and
    holds its name to the same rule as ``alp-db migration generate`` (Alembic cookbook:
    "Customizing Revision Generation").
    """
    for directive in directives:
        if directive.message is not None:  # None: `alembic check`, which writes nothing
            slug = re.sub(r"[^a-z0-9]+", "_", directive.message.lower()).strip("_")
            try:
                validate_name(slug)
            except ConfigError as exc:
                raise CommandError(str(exc)) from None
        if not NUMBERED_ID.fullmatch(str(directive.rev_id)):
            script = context.environment_context.script if context.environment_context else None
            directive.rev_id = next_revision_id(script)


def plain_revision(context: Any) -> bool:
    """Whether env.py runs for ``alembic revision`` without ``--autogenerate``.

    Such a run compares nothing, so it needs no database: alembic.ini's
    ``revision_environment = true`` runs env.py only so that number_revision applies.
    Alembic's revision command hands env.py its work function, closing over the
    RevisionContext whose ``command_args`` say whether it autogenerates.
    """
    from alembic.autogenerate.api import RevisionContext

    fn = _work_fn(context)
    for cell in getattr(fn, "__closure__", None) or ():
        contents = cell.cell_contents
        if isinstance(contents, RevisionContext):
            return not contents.command_args.get("autogenerate")
    return False


def _work_fn(context: Any) -> Any:
    env = context._proxy if hasattr(context, "_proxy") else context
    return env.context_opts.get("fn")


def run_plain_revision(context: Any) -> None:
    """Write the revision with no database: only the numbering and name rule apply."""
    fn = _work_fn(context)
    context.configure(dialect_name="postgresql", process_revision_directives=number_revision)
    fn((), context.get_context())


def generate_revision(
    name: str, *, autogenerate: bool = False, database_url: str | URL | None = None
) -> Path:
    """Write ``alembic/versions/NNNN_name.py``; with ``autogenerate``, compare models to the database."""
    slug = validate_name(name)
    config = alembic_config(database_url)
    script = command.revision(config, message=slug, rev_id=next_revision_id(), autogenerate=autogenerate)
    scripts = script if isinstance(script, list) else [script]
    assert scripts[0] is not None
    return Path(scripts[0].path)
