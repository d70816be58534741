"""Batched data migrations: ``SET ... WHERE ...`` applied in key order, one commit per batch.

The guide's loop (``UPDATE items SET difficulty = difficulty * 1.1 WHERE id IN (SELECT id
FROM items WHERE difficulty < 2.0 LIMIT 1000)``) picks its rows by the predicate, so a row
whose new value still matches is picked again and multiplied again, and a negative
difficulty always matches: the loop never ends (here it ends on the CHECK constraint).

Here each batch is a *key range*: the next ``batch_size`` keys after the last key done
(keyset pagination: ``ORDER BY key LIMIT n`` on the key's unique index, never OFFSET, which
rereads every skipped row), and the UPDATE is bounded by that range, so every row is visited
once whatever SET does to the columns that WHERE reads. Each batch commits together with its
checkpoint row (same transaction), so a killed run resumes after the last committed batch and
never applies a batch twice. A batch sets ``lock_timeout`` for itself and is retried a bounded
number of times when a row it needs is locked by someone else.

The modules, from the bottom up: defaults, health (the signals and limits checked before
each batch), plan (options, the plan, names; no database), expressions (the operator's SET
and WHERE, parsed), sql (statement text), pacing (the adaptive batch size), autocommit
(transactions by hand), checkpoints (the table, status, forget), throttle (pausing for the
database's health), catalog (relation and key), runner (the online run), offline (the same
loop as PL/pgSQL), revision (the helpers revisions call), progress.

This module only re-exports the public API, each name loaded on first use (PEP 562 module
``__getattr__``), so that ``scripts.backfill.defaults`` costs the CLI no SQLAlchemy import.

Known limits: SET must not change the key columns (refused when it names one); rows inserted
behind the walk (a key lower than the last key done, e.g. a random UUID) after the run
started are not visited.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scripts.backfill.checkpoints import (
        CHECKPOINTS,
        CheckpointStatus,
        ensure_checkpoint_table,
        forget,
        status,
    )
    from scripts.backfill.defaults import (
        DEFAULT_BATCH_SIZE,
        DEFAULT_LOCK_TIMEOUT,
        DEFAULT_MAX_RETRIES,
        DEFAULT_SLEEP_S,
    )
    from scripts.backfill.health import HealthLimits
    from scripts.backfill.plan import CHECKPOINT_TABLE, BatchOptions, Plan, default_name
    from scripts.backfill.revision import batch_update_in_revision, forget_in_revision
    from scripts.backfill.runner import BackfillResult, batch_update, plan_for

_EXPORTS = {
    "CHECKPOINTS": "checkpoints",
    "CheckpointStatus": "checkpoints",
    "ensure_checkpoint_table": "checkpoints",
    "forget": "checkpoints",
    "status": "checkpoints",
    "DEFAULT_BATCH_SIZE": "defaults",
    "DEFAULT_LOCK_TIMEOUT": "defaults",
    "DEFAULT_MAX_RETRIES": "defaults",
    "DEFAULT_SLEEP_S": "defaults",
    "HealthLimits": "health",
    "CHECKPOINT_TABLE": "plan",
    "BatchOptions": "plan",
    "Plan": "plan",
    "default_name": "plan",
    "batch_update_in_revision": "revision",
    "forget_in_revision": "revision",
    "BackfillResult": "runner",
    "batch_update": "runner",
    "plan_for": "runner",
}

__all__ = [
    "CHECKPOINTS",
    "CHECKPOINT_TABLE",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_SLEEP_S",
    "BackfillResult",
    "BatchOptions",
    "CheckpointStatus",
    "HealthLimits",
    "Plan",
    "batch_update",
    "batch_update_in_revision",
    "default_name",
    "ensure_checkpoint_table",
    "forget",
    "forget_in_revision",
    "plan_for",
    "status",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value
