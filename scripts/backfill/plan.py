"""What a data migration is, before it touches a database: its options, its plan, its name.

Shared by the online runner (runner.py), the offline PL/pgSQL loop (offline.py) and the
revision helper (revision.py), none of which imports another through this module. It loads
neither the ORM models nor numpy, and opens no connection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from scripts.backfill.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MIN_BATCH_SIZE,
    DEFAULT_SLEEP_S,
    DEFAULT_TARGET_BATCH_MS,
)
from scripts.backfill.health import HealthLimits
from scripts.db.durations import duration
from scripts.db.retry import Backoff
from scripts.errors import ConfigError, DataMigrationError
from scripts.migrations.ownership import CHECKPOINT_TABLE_NAME

# Created by the backfill on first use (CREATE TABLE IF NOT EXISTS), like migration_history by
# the migration runtime: no revision or model owns it, so schema diffs must not call it drift
# (scripts.migrations.ownership lists it).
CHECKPOINT_TABLE = CHECKPOINT_TABLE_NAME

# Pause before the n-th retry of a batch that lost a race for a lock (scripts.db.retry).
BACKOFF = Backoff(base_s=0.1, cap_s=5.0)
# Advisory-lock class for "a data migration of this name is running" (two-int form, so it
# can never collide with the migrator's one-bigint lock in scripts/migrations/lock.py).
ADVISORY_CLASS = int.from_bytes(hashlib.sha256(b"alp-db:data-migration").digest()[:4], "big", signed=True)
# The dollar quote of the offline DO block: operator SQL must not contain it.
OFFLINE_DOLLAR_TAG = "$alp_backfill$"


@dataclass(frozen=True)
class BatchOptions:
    """How a data migration runs its batches; the same for the CLI, the library and revisions.

    ``batch_size`` fixes the keys per batch; without it (None) the size adapts between
    ``min_batch_size`` and ``max_batch_size`` so that a batch takes about ``target_batch_ms``
    (pacing.py). ``health`` says when to pause (health.py). Checked on construction, so an
    invalid value never reaches a database.
    """

    batch_size: int | None = None
    sleep: float = DEFAULT_SLEEP_S
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    target_batch_ms: float = DEFAULT_TARGET_BATCH_MS
    min_batch_size: int = DEFAULT_MIN_BATCH_SIZE
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    health: HealthLimits = field(default_factory=HealthLimits)
    backoff: Backoff = field(default=BACKOFF, compare=False)

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch size {self.batch_size} is not positive", "use --batch-size 1 or more")
        if not 1 <= self.min_batch_size <= self.max_batch_size:
            raise ConfigError(
                f"batch size bounds {self.min_batch_size}..{self.max_batch_size} are not 1 <= min <= max",
                "use --min-batch-size 1 or more, and --max-batch-size at least as large",
            )
        if self.target_batch_ms <= 0:
            raise ConfigError(f"target batch time {self.target_batch_ms} ms is not positive", "use 1 or more")
        if self.sleep < 0:
            raise ConfigError(f"sleep {self.sleep} is negative", "use --sleep 0 or more seconds")
        if self.max_retries < 0:
            raise ConfigError(f"max retries {self.max_retries} is negative", "use 0 or more")
        object.__setattr__(self, "lock_timeout", duration("lock timeout", self.lock_timeout))

    @classmethod
    def of(cls, options: BatchOptions | None = None, **overrides: Any) -> BatchOptions:
        """``options`` (or the defaults) with the keyword arguments a caller gave by name; an
        unknown name is a TypeError, as for any function."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unexpected batch option {', '.join(unknown)}")
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(options or cls(), **given)

    @property
    def adaptive(self) -> bool:
        return self.batch_size is None

    @property
    def first_batch_size(self) -> int:
        """The given size, or the default one within the bounds (where adapting starts)."""
        if self.batch_size is not None:
            return self.batch_size
        return min(max(DEFAULT_BATCH_SIZE, self.min_batch_size), self.max_batch_size)


def check_max_runtime(max_runtime: float | None) -> None:
    if max_runtime is not None and max_runtime < 0:
        raise ConfigError(f"max runtime {max_runtime} is negative", "use --max-runtime 0 or more seconds")


@dataclass(frozen=True)
class Plan:
    """A validated data migration: table and key as the catalog (or the models) spell them."""

    name: str
    table: str  # as the operator wrote it, stored in the checkpoint
    schema: str | None
    relname: str
    key: tuple[str, ...]
    set_: str
    where: str | None
    options: BatchOptions
    # a single key column whose type has max() (integers, timestamps, text ... not uuid before
    # PostgreSQL 18): the batch's last key is then an aggregate over the batch, without a sort
    key_has_max: bool = False


def split_table(table: str) -> tuple[str | None, str]:
    """``schema.table`` or ``table``; the catalog (to_regclass) decides what the name means."""
    schema, dot, relname = table.strip().rpartition(".")
    if not relname:
        raise DataMigrationError(f"table name {table!r} is empty", "give a table name, e.g. items")
    return (schema or None) if dot else None, relname


def parse_key(key: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"a, b"`` or ``["a", "b"]`` -> ``("a", "b")``; None means the table's primary key."""
    if key is None:
        return None
    parts = key.split(",") if isinstance(key, str) else list(key)
    cols = tuple(p.strip() for p in parts if p.strip())
    if not cols:
        raise DataMigrationError("the key is empty", "give a column, or columns separated by commas")
    return cols


def default_name(table: str, set_: str, where: str | None, key: Sequence[str] | None) -> str:
    """The same migration gets the same name, so running the same command again resumes it."""
    digest = hashlib.sha256("\0".join([table, set_, where or "", ",".join(key or ())]).encode())
    return f"{table}_{digest.hexdigest()[:10]}"


def name_lock_id(name: str) -> int:
    """The advisory lock's second int for a migration name (class ADVISORY_CLASS)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big", signed=True)


def show_key(key: tuple[str, ...] | None) -> str:
    return "(start)" if key is None else "(" + ", ".join(key) + ")"
