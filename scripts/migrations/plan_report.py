"""The measured plan as text: for the CLI, ``migrate --plan`` and offline SQL comments."""

from __future__ import annotations

from scripts.migrations.plan import MigrationPlan, RevisionPlan


def render_plan(result: MigrationPlan) -> str:
    """The plan as a DBA reads it: per revision, per statement, locks then risks."""
    lines = [f"target: {result.target} at {result.current or 'base'}; measured on the {result.scratch}"]
    if not result.revisions:
        lines.append(f"nothing to plan: the target is at {result.to}")
    for revision in result.revisions:
        lines.append("")
        lines.extend(revision_lines(revision))
    return "\n".join(lines)


def revision_lines(revision: RevisionPlan) -> list[str]:
    """One revision's part of the plan (also written as SQL comments in offline output)."""
    lines: list[str] = []
    verdict = "BLOCKS WRITES" if revision.blocking else "no long write-blocking lock"
    first_doc_line = revision.description.strip().splitlines()[0] if revision.description.strip() else ""
    lines.append(f"{revision.revision}  {first_doc_line}  [{verdict}]")
    for statement in revision.statements:
        how = (
            "autocommit block (own transactions)" if statement.autocommit else "in the revision's transaction"
        )
        lines.append(f"  - {statement.sql[:100]}")
        lines.append(f"      {how}; {statement.duration_ms} ms on the empty schema")
        for lock in statement.locks:
            source = "" if lock.measured else " (documented for CONCURRENTLY; not observable after commit)"
            lines.append(f"      {lock.mode} on {lock.relation}: {lock.effect}{source}")
        for label, names in (
            ("rewrites", statement.rewritten),
            ("scans", statement.scanned),
            ("creates", statement.created),
            ("drops", statement.dropped),
        ):
            if names:
                lines.append(f"      {label}: {', '.join(names)}")
        for risk in statement.risks:
            lines.append(f"      ! {risk}")
    if revision.error:
        lines.append(f"  FAILED on the scratch copy: {revision.error}")
    return lines
