"""``migration status``: every revision, whether and when it was applied, and whether its file
still matches what was applied."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection

from scripts.db.target import resolve_url, session
from scripts.migrations import history
from scripts.migrations.api import reading_state, script_directory
from scripts.migrations.sessions import require_schema


@dataclass(frozen=True)
class RevisionStatus:
    revision: str
    name: str
    applied: bool
    applied_at: dt.datetime | None
    duration_ms: int | None
    applied_by: str | None
    checksum_ok: bool | None  # None: not applied, or applied before checksums were recorded
    last_error: str | None  # the error of the latest attempt, if it failed

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data["applied_at"] = self.applied_at.isoformat(timespec="seconds") if self.applied_at else None
        return data


@dataclass(frozen=True)
class MigrationStatus:
    current: tuple[str, ...]
    heads: tuple[str, ...]
    revisions: list[RevisionStatus]

    @property
    def pending(self) -> list[str]:
        return [r.revision for r in self.revisions if not r.applied]

    @property
    def problems(self) -> bool:
        return any(r.checksum_ok is False or (r.last_error and not r.applied) for r in self.revisions)


def migration_status(database_url: str | URL | None = None) -> MigrationStatus:
    script = script_directory()
    url = resolve_url(database_url)
    with session(url) as conn, reading_state(url):
        require_schema(conn, url)
        has_version = conn.scalar(text("SELECT to_regclass('alembic_version')")) is not None
        current = (
            tuple(conn.scalars(text("SELECT version_num FROM alembic_version")).all()) if has_version else ()
        )
        records = history.latest_upgrades(conn)
        failures = _latest_failures(conn)
    applied = {rev.revision for head in current for rev in script.iterate_revisions(head, "base")}
    revisions = []
    for rev in reversed(list(script.walk_revisions())):
        record = records.get(rev.revision) if rev.revision in applied else None
        checksum_ok = None
        if record is not None and record.checksum:
            checksum_ok = record.checksum == history.checksum(rev.path)
        revisions.append(
            RevisionStatus(
                revision=rev.revision,
                name=history.migration_name(rev.path),
                applied=rev.revision in applied,
                applied_at=record.applied_at if record else None,  # type: ignore[arg-type]
                duration_ms=record.duration_ms if record else None,
                applied_by=record.applied_by if record else None,
                checksum_ok=checksum_ok,
                last_error=failures.get(rev.revision),
            )
        )
    return MigrationStatus(current=current, heads=tuple(script.get_heads()), revisions=revisions)


def _latest_failures(conn: Connection) -> dict[str, str]:
    """revision -> error message, where the latest attempt at that revision failed."""
    if conn.scalar(text("SELECT to_regclass('migration_history')")) is None:
        return {}
    rows = conn.execute(
        text(
            "SELECT revision, success, error_message FROM ("
            " SELECT DISTINCT ON (revision) revision, success, error_message FROM migration_history"
            " ORDER BY revision, applied_at DESC, id DESC) latest WHERE NOT success"
        )
    ).all()
    return {row.revision: row.error_message or "failed" for row in rows}
