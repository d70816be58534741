"""The partition manager's defaults, stated once: the library uses them and the CLI shows them.

Pure constants (no SQLAlchemy), so ``alp-db --help`` can read them without slowing start-up.
"""

from __future__ import annotations

DEFAULT_TABLE = "attempts"
INTERVALS = ("year", "month")
# How many periods past the current one `ensure` prepares when --ahead is not given.
DEFAULT_AHEAD = {"year": 1, "month": 3}
# A plan larger than this is almost surely a stray row (a clock set to 1970) in the default
# partition, not a wish for hundreds of partitions: refuse it and ask for --start.
MAX_NEW_PARTITIONS = 120
# Below PostgreSQL's default deadlock_timeout (1s): if our lock wait is part of a cycle with an
# application transaction, we give up (and retry) before its deadlock check can cancel *it*.
# Short, because a writer that asks for a conflicting lock queues behind our *waiting* request
# ("Explicit Locking": lock requests are granted in order): our lock_timeout is also the
# longest our waiting can make a writer wait.
DEFAULT_LOCK_TIMEOUT = "100ms"
DEFAULT_RETRIES = 10
# Rows of the default partition moved per short transaction by `ensure`.
DEFAULT_BATCH_ROWS = 5000
# After each batch, `ensure` waits this many times as long as the batch took (1: the move
# writes at most half of the time), so the platform's commits are not stuck behind its WAL.
DEFAULT_PAUSE_RATIO = 1.0
# First pause before a retry; it doubles each time (scripts.db.retry.Backoff).
RETRY_BACKOFF_S = 0.2
