"""Does each revision's docstring say what the measured plan shows it locks?

A DBA trusts the "What it locks" line of a revision's docstring; this check holds it to the
measurement (scripts.migrations.plan): every lock that blocks the application's writes on
a table the target already has must be named in the docstring, mode and table, or the
revision is a finding, with the measured line to paste.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scripts.migrations.plan import MigrationPlan, RevisionPlan


@dataclass(frozen=True)
class DocstringGap:
    revision: str
    missing: list[str]  # "ACCESS EXCLUSIVE on users"
    measured_line: str  # "What it locks: ..." as measured, to paste

    def __str__(self) -> str:
        return (
            f"{self.revision}: its docstring does not mention {', '.join(self.missing)};"
            f" measured — paste: {self.measured_line}"
        )


def _normalised(text: str) -> str:
    return " ".join(text.upper().split())


def _mentions(doc: str, mode: str, relation: str) -> bool:
    """The docstring names the mode and the table (schema optional), in any case."""
    table = relation.split(".", 1)[-1]
    has_table = re.search(rf"(?<![\w.]){re.escape(table.upper())}(?!\w)", _normalised(doc)) is not None
    return mode in _normalised(doc) and has_table


def measured_line(revision: RevisionPlan) -> str:
    parts: list[str] = []
    for statement in revision.statements:
        work = ", ".join(
            [f"rewrites {n}" for n in statement.rewritten] + [f"scans {n}" for n in statement.scanned]
        )
        for lock in statement.locks:
            if not lock.blocks_writes:
                continue
            part = f"{lock.mode} on {lock.relation.split('.', 1)[-1]}"
            part += f" ({work})" if work else " (metadata only)"
            if part not in parts:
                parts.append(part)
    return "What it locks: " + ("; ".join(parts) if parts else "nothing that blocks writes") + "."


def docstring_gaps(plan: MigrationPlan) -> list[DocstringGap]:
    gaps = []
    for revision in plan.revisions:
        missing = []
        for statement in revision.statements:
            for lock in statement.locks:
                name = f"{lock.mode} on {lock.relation.split('.', 1)[-1]}"
                undeclared = not _mentions(revision.docstring, lock.mode, lock.relation)
                if lock.blocks_writes and undeclared and name not in missing:
                    missing.append(name)
        if missing:
            gaps.append(DocstringGap(revision.revision, missing, measured_line(revision)))
    return gaps
