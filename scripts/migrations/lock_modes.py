"""What each table lock mode means for the application (PostgreSQL docs, "Explicit Locking",
Table 13.2 "Conflicting Lock Modes").

The application takes ACCESS SHARE (SELECT), ROW SHARE (SELECT ... FOR UPDATE/SHARE) and
ROW EXCLUSIVE (INSERT, UPDATE, DELETE, MERGE); a migration's lock blocks the application
exactly when it conflicts with one of those.
"""

from __future__ import annotations

from dataclasses import dataclass

# pg_locks.mode spelling -> the SQL name a DBA reads (LOCK TABLE ... IN <name> MODE)
SQL_NAMES = {
    "AccessShareLock": "ACCESS SHARE",
    "RowShareLock": "ROW SHARE",
    "RowExclusiveLock": "ROW EXCLUSIVE",
    "ShareUpdateExclusiveLock": "SHARE UPDATE EXCLUSIVE",
    "ShareLock": "SHARE",
    "ShareRowExclusiveLock": "SHARE ROW EXCLUSIVE",
    "ExclusiveLock": "EXCLUSIVE",
    "AccessExclusiveLock": "ACCESS EXCLUSIVE",
}
# from weakest to strongest: the order of Table 13.2
STRENGTH = {mode: rank for rank, mode in enumerate(SQL_NAMES)}

# Table 13.2: the application's modes each migration mode conflicts with.
_CONFLICTS_WITH_APP = {
    "AccessShareLock": frozenset(),
    "RowShareLock": frozenset(),
    "RowExclusiveLock": frozenset(),
    "ShareUpdateExclusiveLock": frozenset(),
    "ShareLock": frozenset({"RowExclusiveLock"}),
    "ShareRowExclusiveLock": frozenset({"RowExclusiveLock"}),
    "ExclusiveLock": frozenset({"RowShareLock", "RowExclusiveLock"}),
    "AccessExclusiveLock": frozenset({"AccessShareLock", "RowShareLock", "RowExclusiveLock"}),
}


@dataclass(frozen=True)
class Impact:
    blocks_reads: bool
    blocks_writes: bool
    text: str  # "blocks reads and writes", ...


def impact(mode: str) -> Impact:
    """What holding ``mode`` on a table does to the application's queries on it."""
    conflicts = _CONFLICTS_WITH_APP.get(mode)
    if conflicts is None:
        return Impact(False, False, f"unknown lock mode {mode}")
    reads = "AccessShareLock" in conflicts
    writes = "RowExclusiveLock" in conflicts
    if reads:
        text = "blocks reads and writes"
    elif "RowShareLock" in conflicts:
        text = "blocks writes and SELECT ... FOR UPDATE (plain reads go on)"
    elif writes:
        text = "blocks writes (reads go on)"
    elif mode == "ShareUpdateExclusiveLock":
        text = "blocks other DDL, VACUUM and ANALYZE only (reads and writes go on)"
    else:
        text = "blocks neither reads nor writes"
    return Impact(reads, writes, text)


def sql_name(mode: str) -> str:
    return SQL_NAMES.get(mode, mode)


def strongest(modes: list[str]) -> str:
    return max(modes, key=lambda mode: STRENGTH.get(mode, -1))


def expected_duration(size_bytes: int) -> str:
    """A coarse reading of how long a scan or rewrite of ``size_bytes`` takes on common
    hardware (sequential I/O of some hundreds of MB/s, index builds slower): an order of
    magnitude for a DBA, not a forecast."""
    if size_bytes < 10 * 1024**2:
        return "well under a second"
    if size_bytes < 1024**3:
        return "seconds"
    if size_bytes < 100 * 1024**3:
        return "minutes"
    return "hours"


def human_size(size_bytes: int) -> str:
    value = float(size_bytes)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
