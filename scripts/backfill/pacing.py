"""The batch size: fixed when the operator gives one, else adapted to a target batch duration.

After each batch the next size is scaled by target / measured duration, bounded per step
(halve at most, grow at most by half) and by the minimum and maximum sizes, and left alone
within 10% of the target so that noise does not make it wander. The right size for a table
depends on its rows, indexes, triggers and the SET itself, and changes under load; the
target duration is what an operator actually cares about (how long a batch holds its row
locks and how much WAL it writes at once). GitLab's batched background migrations tune their
batch size the same way (``Gitlab::Database::BackgroundMigration::BatchOptimizer``).
"""

from __future__ import annotations

from dataclasses import dataclass

BAND = 0.10  # within 10% of the target: keep the size
MAX_SHRINK = 0.5
MAX_GROWTH = 1.5


@dataclass
class BatchSizer:
    size: int
    adaptive: bool
    target_s: float
    min_size: int
    max_size: int

    def observe(self, seconds: float, walked: int) -> int:
        """The size for the next batch, after one that walked ``walked`` keys in ``seconds``."""
        if not self.adaptive or seconds <= 0 or walked < self.size:
            # a short batch is the last one of the table (or of a sparse range): nothing to learn
            return self.size
        ratio = self.target_s / seconds
        if abs(ratio - 1) <= BAND:
            return self.size
        factor = min(max(ratio, MAX_SHRINK), MAX_GROWTH)
        self.size = min(max(round(self.size * factor), self.min_size), self.max_size)
        return self.size
