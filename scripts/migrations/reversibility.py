"""Whether a revision can be undone: one check for ``alp-db migration rollback`` and plain
``alembic downgrade`` alike (the runtime refuses before anything is undone)."""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError

from scripts.errors import AlpDbError


class IrreversibleRevision(AlpDbError):
    """A revision that cannot be undone: no downgrade, or one that only raises."""


def _statements(body: list[ast.stmt]) -> list[ast.stmt]:
    return [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]


def _is_effectively_empty(body: list[ast.stmt]) -> bool:
    return all(isinstance(s, ast.Pass) for s in _statements(body))


def _only_raises(body: list[ast.stmt]) -> bool:
    statements = _statements(body)
    return len(statements) == 1 and isinstance(statements[0], ast.Raise)


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


def refuse_irreversible(revisions: Iterable[Script]) -> None:
    """Raise for the first of ``revisions`` (newest first) that cannot be undone."""
    for rev in revisions:
        reason = reversibility(rev.path)
        if reason:
            raise IrreversibleRevision(
                f"revision {rev.revision} cannot be rolled back: {reason}",
                "write its downgrade() first, or restore from a backup",
            )


def undo_plan(script: ScriptDirectory, heads: Collection[str], destination: Any) -> list[Script]:
    """The revisions a downgrade from ``heads`` to ``destination`` (an id, None for base, or
    ``-N``) undoes, newest first; empty where the history branches and it cannot be told
    (each revision is then checked as it starts: scripts.migrations.steps)."""
    if len(heads) != 1:
        return []
    head: Script | None = script.get_revision(next(iter(heads)))
    if isinstance(destination, str) and destination.startswith("-") and destination[1:].isdigit():
        undo: list[Script] = []
        while head is not None and len(undo) < int(destination[1:]):
            undo.append(head)
            down = head.down_revision
            head = script.get_revision(down) if isinstance(down, str) else None
        return undo
    if head is None or not (destination is None or isinstance(destination, str)):
        return []
    try:
        chain = list(script.iterate_revisions(head.revision, destination or "base"))
    except (CommandError, RevisionError):
        return []
    return [rev for rev in chain if rev is not None and rev.revision != destination]
