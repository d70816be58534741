"""migration_history: checksums of revision files and one row per revision applied or undone."""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    Insert,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Update,
    func,
    insert,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import conv


def define_table(metadata: MetaData) -> Table:
    """migration_history, owned by the runtime; models.operations maps the same definition.

    Defined here in Core, with final (``conv``) names, so that a migration run creates and
    writes it without importing the ORM models — a tenth of a second of every run.
    """
    return Table(
        "migration_history",
        metadata,
        Column("id", BigInteger, Identity(always=True), nullable=False),
        Column("revision", String(32), nullable=False),
        Column("migration_name", String(255), nullable=False),
        Column("direction", String(10), nullable=False),
        Column("checksum", String(64)),
        Column("applied_at", DateTime(timezone=True), server_default=text("now()"), nullable=False),
        Column("duration_ms", Integer),
        Column("success", Boolean, nullable=False),
        Column("error_message", Text),
        Column("applied_by", String(128), server_default=text("CURRENT_USER"), nullable=False),
        PrimaryKeyConstraint("id", name=conv("pk_migration_history")),
        CheckConstraint(
            "direction IN ('upgrade', 'downgrade')", name=conv("ck_migration_history_direction_valid")
        ),
        CheckConstraint("duration_ms >= 0", name=conv("ck_migration_history_duration_non_negative")),
        Index(conv("ix_migration_history_applied_at"), "applied_at"),
        info={"owned_by": "runtime"},  # see scripts.migrations.ownership
    )


HISTORY_TABLE = define_table(MetaData())
ERROR_MESSAGE_LIMIT = 4000  # enough for PostgreSQL's message, detail and hint
# A revision's row while it runs: written (autocommit) before its transaction begins, turned
# into its success row inside that transaction, or into its failure row after. A row still
# "running" when the next migrator holds the lock belongs to a migrator that was killed.
RUNNING = "running"
INTERRUPTED = (
    "interrupted: the migrator's connection was lost while this revision ran"
    " (its transaction was rolled back)"
)


def revision_files(module_path: str | Path) -> list[Path]:
    """A revision's files: its module plus the SQL files beside it that share its stem
    (``<stem>.*sql``, sorted)."""
    path = Path(module_path)
    return [path, *sql_files_by_stem(path.parent).get(path.stem, ())]


# The runtime asks for a revision's files for every revision it applies; listing the directory
# each time is quadratic over a long history (5 ms per revision at 1,000 revisions). A listing is
# reused while the directory's mtime is unchanged, and only once that mtime is older than this:
# an entry added within the clock's granularity of the listing could otherwise go unseen (git's
# "racy clean" rule, Documentation/technical/racy-git.txt).
_RACY_NS = 2_000_000_000
_LISTINGS: dict[Path, tuple[int, dict[str, tuple[Path, ...]]]] = {}


def sql_files_by_stem(directory: Path) -> dict[str, tuple[Path, ...]]:
    """The SQL files in ``directory`` grouped by every stem they belong to (``<stem>.*sql``)."""
    mtime = directory.stat().st_mtime_ns
    cached = _LISTINGS.get(directory)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    grouped: dict[str, list[Path]] = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith("sql"):
            continue
        for at, char in enumerate(name):
            if char == "." and at > 0:
                grouped.setdefault(name[:at], []).append(directory / name)
    listing = {stem: tuple(paths) for stem, paths in grouped.items()}
    if time.time_ns() - mtime > _RACY_NS:
        _LISTINGS[directory] = (mtime, listing)
    return listing


def checksum(module_path: str | Path) -> str:
    """SHA-256 over the names and bytes of a revision's files (stable across checkouts)."""
    return checksum_of(revision_files(module_path))


def checksum_of(files: Iterable[Path]) -> str:
    """:func:`checksum` of files already listed (a revision's module first, then its SQL files)."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        digest.update(b"\0")
        # normalise line endings so a Windows checkout does not look edited
        digest.update(file.read_bytes().replace(b"\r\n", b"\n"))
        digest.update(b"\0")
    return digest.hexdigest()


def migration_name(module_path: str | Path) -> str:
    return Path(module_path).stem


@dataclass(frozen=True)
class HistoryRow:
    revision: str
    migration_name: str
    direction: str  # 'upgrade' | 'downgrade'
    checksum: str | None
    duration_ms: int | None
    success: bool
    error_message: str | None = None

    def values(self) -> dict[str, object]:
        message = self.error_message
        if message is not None and len(message) > ERROR_MESSAGE_LIMIT:
            message = message[: ERROR_MESSAGE_LIMIT - 1] + "…"
        return {
            "revision": self.revision,
            "migration_name": self.migration_name,
            "direction": self.direction,
            "checksum": self.checksum,
            "duration_ms": self.duration_ms,
            "success": self.success,
            "error_message": message,
        }

    def insert(self) -> Insert:
        return insert(HISTORY_TABLE).inline().values(**self.values())

    def replace(self, row_id: int) -> Update:
        """Turn the row ``row_id`` (this revision's "running" row) into this one."""
        return (
            update(HISTORY_TABLE)
            .where(HISTORY_TABLE.c.id == row_id)
            .values(**self.values(), applied_at=func.now())
        )


def start(conn: Connection, row: HistoryRow) -> int:
    """Write ``row`` as the revision's "running" row; its id, to :meth:`HistoryRow.replace` later."""
    running = HistoryRow(**{**row.__dict__, "success": False, "error_message": RUNNING})
    return int(conn.scalar(insert(HISTORY_TABLE).values(**running.values()).returning(HISTORY_TABLE.c.id)))


def record_interrupted(conn: Connection) -> list[str]:
    """Mark "running" rows left by a migrator that is gone as interrupted; their revisions."""
    return list(
        conn.scalars(
            update(HISTORY_TABLE)
            .where(~HISTORY_TABLE.c.success, HISTORY_TABLE.c.error_message == RUNNING)
            .values(error_message=INTERRUPTED)
            .returning(HISTORY_TABLE.c.revision)
        )
    )


def table_exists(conn: Connection) -> bool:
    return conn.scalar(text("SELECT to_regclass('migration_history') IS NOT NULL")) is True


def ensure_table(conn: Connection) -> None:
    """Create migration_history if missing (like alembic_version, it precedes revision 0001):
    the same idempotent DDL as offline scripts, compiled once per process."""
    for statement in create_statements():
        conn.exec_driver_sql(statement)


@functools.cache
def create_statements() -> tuple[str, ...]:
    """The idempotent DDL for offline scripts (``CREATE ... IF NOT EXISTS``)."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = postgresql.dialect()
    statements = [str(CreateTable(HISTORY_TABLE, if_not_exists=True).compile(dialect=dialect))]
    statements += [
        str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect))
        for index in sorted(HISTORY_TABLE.indexes, key=lambda ix: ix.name or "")
    ]
    return tuple(s.strip() for s in statements)


@dataclass(frozen=True)
class AppliedRecord:
    """The latest successful upgrade of a revision, as migration_history has it."""

    revision: str
    checksum: str | None
    applied_at: object
    duration_ms: int | None
    applied_by: str


def latest_upgrades(conn: Connection, *, ensured: bool = False) -> dict[str, AppliedRecord]:
    """revision -> its most recent successful upgrade row (empty if the table is missing)."""
    if not ensured and conn.scalar(text("SELECT to_regclass('migration_history')")) is None:
        return {}
    rows = conn.execute(
        text(
            "SELECT DISTINCT ON (revision) revision, checksum, applied_at, duration_ms, applied_by"
            " FROM migration_history WHERE success AND direction = 'upgrade'"
            " ORDER BY revision, applied_at DESC, id DESC"
        )
    ).all()
    return {row.revision: AppliedRecord(*row) for row in rows}


def changed_revisions(records: dict[str, AppliedRecord], paths: dict[str, str]) -> list[tuple[str, str]]:
    """(revision, file) of each applied revision whose files no longer match its checksum."""
    changed = []
    for revision, record in sorted(records.items()):
        path = paths.get(revision)
        if path is not None and record.checksum and checksum(path) != record.checksum:
            changed.append((revision, path))
    return changed
