"""``migration rollback``: undo the last N revisions, or down to a revision, all or nothing."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL

from scripts.errors import AlpDbError, ConfigError, UnknownRevision
from scripts.migrations import history
from scripts.migrations.api import current_revision, downgrade, script_directory


class IrreversibleRevision(AlpDbError):
    """A revision that cannot be undone: no downgrade, or one that only raises."""


@dataclass(frozen=True)
class RollbackPlan:
    current: str | None
    target: str  # the revision left applied afterwards ('base' for none)
    revisions: list[tuple[str, str]]  # (revision, migration name), newest first


def _is_effectively_empty(body: list[ast.stmt]) -> bool:
    statements = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return all(isinstance(s, ast.Pass) for s in statements)


def _only_raises(body: list[ast.stmt]) -> bool:
    statements = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return bool(statements) and isinstance(statements[-1], ast.Raise) and len(statements) == 1


def reversibility(path: str | Path) -> str | None:
    """Why a revision cannot be rolled back, or None when it can.

    An empty downgrade under a non-empty upgrade would "succeed" while leaving the upgrade's
    changes behind — the worst kind of rollback — so it counts as no downgrade at all.
    """
    tree = ast.parse(Path(path).read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    down = functions.get("downgrade")
    up = functions.get("upgrade")
    if down is None:
        return "it has no downgrade()"
    if _only_raises(down.body):
        return "its downgrade() raises (declared irreversible)"
    if _is_effectively_empty(down.body) and up is not None and not _is_effectively_empty(up.body):
        return "its downgrade() does nothing while its upgrade() changes the schema"
    return None


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
        undo = chain if to == "base" else chain[: steps or 1]
    if not undo:
        raise ConfigError(f"nothing to roll back: the database is already at {to}")
    target = chain[len(undo)].revision if len(undo) < len(chain) else "base"
    for rev in undo:
        reason = reversibility(rev.path)
        if reason:
            raise IrreversibleRevision(
                f"revision {rev.revision} cannot be rolled back: {reason}",
                "write its downgrade() first, or restore from a backup",
            )
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
