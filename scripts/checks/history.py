"""The database's account of what was applied — ``alembic_version`` and ``migration_history``
(written by scripts.migrations.runtime) — against the revision files: applied revisions present
and unchanged (checksum), history consistent and in order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from scripts.checks.files import RevisionFile
from scripts.checks.findings import ERROR, Finding
from scripts.errors import PermissionDenied
from scripts.migrations import history

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


@dataclass(frozen=True)
class HistoryEvent:
    id: int
    revision: str
    migration_name: str
    direction: str
    checksum: str | None
    success: bool
    applied_at: datetime


@dataclass(frozen=True)
class DatabaseState:
    versions: tuple[str, ...]  # the rows of alembic_version
    events: tuple[HistoryEvent, ...] | None  # migration_history in insertion order; None if absent


def read_database_state(url: URL) -> DatabaseState:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import inspect, select
    from sqlalchemy.exc import DBAPIError

    from scripts.db.sqlstate import INSUFFICIENT_PRIVILEGE, sqlstate
    from scripts.db.target import session

    table = history.HISTORY_TABLE
    with session(url) as conn:
        try:
            versions = tuple(MigrationContext.configure(conn).get_current_heads())
            events: tuple[HistoryEvent, ...] | None = None
            if inspect(conn).has_table(table.name):
                rows = conn.execute(
                    select(
                        table.c.id,
                        table.c.revision,
                        table.c.migration_name,
                        table.c.direction,
                        table.c.checksum,
                        table.c.success,
                        table.c.applied_at,
                    ).order_by(table.c.id)
                )
                events = tuple(HistoryEvent(*row) for row in rows)
        except DBAPIError as exc:
            if sqlstate(exc) == INSUFFICIENT_PRIVILEGE:
                raise PermissionDenied(
                    f"cannot read alembic_version / migration_history as {url.username!r}",
                    "GRANT SELECT on both tables to this role, or use --offline",
                ) from None
            raise
    return DatabaseState(versions=versions, events=events)


def check_history(revisions: list[RevisionFile], state: DatabaseState) -> list[Finding]:
    files = {r.revision: r for r in revisions if r.revision}
    last_success: dict[str, HistoryEvent] = {}
    last_upgrade: dict[str, HistoryEvent] = {}
    for row in state.events or ():
        if row.success:
            last_success[row.revision] = row
            if row.direction == "upgrade":
                last_upgrade[row.revision] = row

    applied, missing, complete = _applied(state.versions, files)
    missing |= {rev for rev, e in last_success.items() if e.direction == "upgrade" and rev not in files}
    findings = [_missing_file(rev, last_upgrade.get(rev)) for rev in sorted(missing)]
    if state.events is None:
        if state.versions:
            findings.append(_history_table_missing(state.versions))
        return findings
    for rev in sorted(applied):
        r, event, upgrade = files[rev], last_success.get(rev), last_upgrade.get(rev)
        if event is None:
            findings.append(_applied_without_history(rev))
        elif event.direction == "downgrade":
            findings.append(_says_downgraded(rev, event))
        if upgrade is not None and upgrade.checksum and upgrade.checksum != r.checksum():
            findings.append(_checksum_mismatch(r, upgrade))
        for down in r.down_revisions:
            earlier = last_upgrade.get(down)
            if upgrade is not None and earlier is not None and down in applied and upgrade.id < earlier.id:
                findings.append(_out_of_order(rev, upgrade, down, earlier))
    if complete:  # otherwise the revisions before a missing link are not known to be applied
        findings += [
            _says_applied(rev, last)
            for rev, last in sorted(last_success.items())
            if last.direction == "upgrade" and rev in files and rev not in applied
        ]
    return findings


def unchanged_applied(revisions: list[RevisionFile], state: DatabaseState) -> frozenset[str]:
    """Applied revisions whose files still match the checksum recorded by their last upgrade:
    linted before they were applied, and byte for byte the same since."""
    files = {r.revision: r for r in revisions if r.revision}
    applied, _, _ = _applied(state.versions, files)
    last: dict[str, HistoryEvent] = {}
    for row in state.events or ():
        if row.success:
            last[row.revision] = row
    return frozenset(
        rev
        for rev in applied
        if (event := last.get(rev)) is not None
        and event.direction == "upgrade"
        and event.checksum
        and event.checksum == files[rev].checksum()
    )


def _applied(versions: tuple[str, ...], files: dict[str, RevisionFile]) -> tuple[set[str], set[str], bool]:
    """Revisions applied per alembic_version (its rows and their ancestors), those without a
    file, and whether the walk was complete (no missing link cut it short)."""
    applied: set[str] = set()
    missing: set[str] = set()
    stack = list(versions)
    while stack:
        rev = stack.pop()
        if rev in applied or rev in missing:
            continue
        if rev not in files:
            missing.add(rev)
            continue
        applied.add(rev)
        stack += files[rev].down_revisions
    return applied, missing, not missing


def _when(event: HistoryEvent) -> str:
    return f"history id {event.id}, {event.applied_at:%Y-%m-%d %H:%M:%S %Z}".rstrip()


_FIND_THE_TRUTH = "find out which is true (alp-db validate-schema), then migrate or `alembic stamp`"


def _missing_file(rev: str, upgrade: HistoryEvent | None) -> Finding:
    file_name = f"{upgrade.migration_name}.py" if upgrade else f"the file of revision {rev}"
    return Finding(
        "missing-file",
        ERROR,
        rev,
        f"revision {rev} is applied to the database, but {file_name} is missing from alembic/versions",
        "restore it (git log --diff-filter=D --name-only -- alembic/versions): "
        "an applied revision is never deleted",
    )


def _history_table_missing(versions: tuple[str, ...]) -> Finding:
    return Finding(
        "history-table-missing",
        ERROR,
        None,
        f"alembic_version is at {', '.join(versions)} but there is no migration_history table: "
        "the database was migrated without the alp-db runtime",
        "check the schema with alp-db validate-schema; from now on migrate through alembic/env.py "
        "(alp-db migrate or alembic upgrade)",
    )


def _applied_without_history(rev: str) -> Finding:
    return Finding(
        "applied-without-history",
        ERROR,
        rev,
        f"alembic_version says revision {rev} is applied, but migration_history has no successful "
        "upgrade of it (stamped, or applied outside the runtime?)",
        "check the schema with alp-db validate-schema; from now on migrate only through alembic/env.py",
    )


def _says_downgraded(rev: str, event: HistoryEvent) -> Finding:
    return Finding(
        "history-says-downgraded",
        ERROR,
        rev,
        f"alembic_version says revision {rev} is applied, but its last successful event in "
        f"migration_history is a downgrade ({_when(event)})",
        _FIND_THE_TRUTH,
    )


def _says_applied(rev: str, event: HistoryEvent) -> Finding:
    return Finding(
        "history-says-applied",
        ERROR,
        rev,
        f"migration_history's last successful event for revision {rev} is an upgrade "
        f"({_when(event)}), but alembic_version does not include it",
        _FIND_THE_TRUTH,
    )


def _checksum_mismatch(r: RevisionFile, upgrade: HistoryEvent) -> Finding:
    names = " / ".join(p.name for p in r.files)
    return Finding(
        "checksum-mismatch",
        ERROR,
        r.revision,
        f"revision {r.revision} was edited after it was applied ({_when(upgrade)}): "
        f"{names} no longer match(es) the checksum recorded then",
        "restore the applied version (git log -p -- alembic/versions) and put the change in a new "
        "revision (alp-db migration generate); if the edit changes no SQL (a comment), record it: "
        f"UPDATE migration_history SET checksum = '{r.checksum()}' WHERE id = {upgrade.id}",
    )


def _out_of_order(rev: str, upgrade: HistoryEvent, down: str, earlier: HistoryEvent) -> Finding:
    return Finding(
        "history-out-of-order",
        ERROR,
        rev,
        f"migration_history shows revision {rev} applied ({_when(upgrade)}) before the revision it "
        f"builds on, {down} ({_when(earlier)})",
        "the history was edited or written by hand; check the schema with alp-db validate-schema",
    )
