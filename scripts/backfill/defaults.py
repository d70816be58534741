"""The defaults of a data migration's options, in a module that imports nothing, so the CLI can
show them in ``--help`` without loading SQLAlchemy (``alp-db --help`` start-up time)."""

from __future__ import annotations

# 5,000 keys keep a batch of a typical row well under 150 ms on a 2-core machine
# (benchmarks/bench_backfill.py) while the per-batch cost (BEGIN, commit, checkpoint) stays
# a few percent of a single UPDATE's time.
DEFAULT_BATCH_SIZE = 5000
DEFAULT_SLEEP_S = 0.0
# A batch that waits longer than this for a row lock gives up, rolls back and retries later:
# waiting longer would make the application's own writes queue behind it.
DEFAULT_LOCK_TIMEOUT = "2s"
DEFAULT_MAX_RETRIES = 10
