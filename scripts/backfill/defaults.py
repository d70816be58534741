"""The defaults of a data migration's options, in a module that imports nothing, so the CLI can
show them in ``--help`` without loading SQLAlchemy (``alp-db --help`` start-up time)."""

from __future__ import annotations

# 5,000 keys keep a batch of a typical row well under 150 ms on a 2-core machine
# (benchmarks/bench_backfill.py) while the per-batch cost (BEGIN, commit, checkpoint) stays
# a few percent of a single UPDATE's time.
DEFAULT_BATCH_SIZE = 5000
# Without --batch-size the size adapts so that a batch takes about this long: long enough
# that BEGIN/COMMIT/checkpoint stay a few percent, short enough that the row locks a batch
# holds never make the application wait noticeably (GitLab's batched background migrations
# aim their optimizer at a similar fraction of their interval). It aims below the 150 ms a
# batch may hold its row locks (benchmarks/bench_backfill.py): aimed at 150 ms itself, the
# noise of single batches took the longest to 168-234 ms (1M rows, 5 runs).
DEFAULT_TARGET_BATCH_MS = 100.0
DEFAULT_MIN_BATCH_SIZE = 100
DEFAULT_MAX_BATCH_SIZE = 50_000
DEFAULT_SLEEP_S = 0.0
# A batch that waits longer than this for a row lock gives up, rolls back and retries later:
# waiting longer would make the application's own writes queue behind it.
DEFAULT_LOCK_TIMEOUT = "2s"
DEFAULT_MAX_RETRIES = 10

# Health thresholds checked before every batch (GitLab pauses its batched background
# migrations on replication lag and on autovacuum of the table, for the same reasons).
# A hot standby serving reads more than 10 s behind shows users stale data.
DEFAULT_MAX_REPLAY_LAG_S = 10.0
# Bytes of WAL a standby has not replayed: 4 WAL segments, seconds of replay for a standby.
DEFAULT_MAX_REPLAY_LAG_BYTES = 64 * 1024**2
# WAL kept on the primary's disk for replication slots (an inactive slot keeps it forever).
DEFAULT_MAX_SLOT_WAL_BYTES = 1024**3
# While paused, look again this often.
DEFAULT_PAUSE_POLL_S = 5.0
# While healthy, read the signals at most this often (and always before the first batch): one
# read costs 1-3 ms of the server's time, 2-3% of a 100 ms batch when read before every one,
# while a second of batches writes a few MB of WAL against limits of 10 s and 64 MB.
DEFAULT_HEALTH_CHECK_INTERVAL_S = 1.0
