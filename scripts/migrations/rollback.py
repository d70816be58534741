"""``migration rollback``: undo the last N revisions, or down to a revision, all or nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL

from scripts.errors import ConfigError, UnknownRevision
from scripts.migrations import history
from scripts.migrations.api import current_revision, downgrade, script_directory
from scripts.migrations.reversibility import IrreversibleRevision, refuse_irreversible

__all__ = ["IrreversibleRevision", "RollbackPlan", "plan_rollback", "rollback"]


@dataclass(frozen=True)
class RollbackPlan:
    current: str | None
    target: str  # the revision left applied afterwards ('base' for none)
    revisions: list[tuple[str, str]]  # (revision, migration name), newest first


def plan_rollback(
    database_url: str | URL | None = None, *, steps: int | None = None, to: str | None = None
) -> RollbackPlan:
    if steps is not None and to is not None:
        raise ConfigError("give either --steps or --to, not both")
    if steps is not None and steps < 1:
        raise ConfigError("--steps must be at least 1")
    script = script_directory()
    current = current_revision(database_url)
    if current is None:
        raise ConfigError("nothing to roll back: no revision is applied")
    chain = [rev for rev in script.iterate_revisions(current, "base")]  # newest first
    if to is not None and to != "base":
        target_rev = _lookup(script, to)
        ids = [rev.revision for rev in chain]
        if target_rev not in ids:
            raise ConfigError(
                f"revision {to} is not applied below {current}", "see `alp-db migration status`"
            )
        undo = chain[: ids.index(target_rev)]
    else:
        if steps is not None and steps > len(chain):
            raise ConfigError(
                f"--steps {steps} is more than the {len(chain)} revision(s) applied (at {current})",
                "give at most that many, or --to base to undo them all",
            )
        undo = chain if to == "base" else chain[: steps or 1]
    if not undo:
        raise ConfigError(f"nothing to roll back: the database is already at {to}")
    target = chain[len(undo)].revision if len(undo) < len(chain) else "base"
    refuse_irreversible(undo)
    return RollbackPlan(
        current=current,
        target=target,
        revisions=[(rev.revision, history.migration_name(rev.path)) for rev in undo],
    )


def rollback(
    plan: RollbackPlan,
    database_url: str | URL | None = None,
    *,
    overrides: Mapping[str, object] | None = None,
) -> None:
    """Apply a plan made by :func:`plan_rollback` (each revision in its own transaction)."""
    downgrade(database_url, plan.target, overrides=overrides)


def _lookup(script: ScriptDirectory, rev: str) -> str:
    try:
        found = script.get_revision(rev)
    except CommandError:
        found = None
    if found is None:
        raise UnknownRevision(f"unknown revision {rev!r}", "see `alp-db migration status`")
    return found.revision
