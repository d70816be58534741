"""One attempt row as text columns, for the benchmarks that write attempts (COPY or INSERT).

Columns: id, attempted_at, user_id, item_id, is_correct, score, response_time_ms, answer.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime


def attempt_record(rng: random.Random, at: datetime, users: list[str], items: list[str]) -> tuple[str, ...]:
    correct = rng.random() < 0.6
    return (
        str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        at.isoformat(),
        rng.choice(users),
        rng.choice(items),
        "t" if correct else "f",
        "1" if correct else f"{rng.random() * 0.5:.3f}",
        str(rng.randint(800, 60_000)),
        f'{{"choice": {rng.randint(0, 3)}}}',
    )
