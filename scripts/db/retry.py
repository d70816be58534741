"""One retry loop for transactions that lost a race for a lock: capped exponential backoff.

The caller's function runs one whole transaction; after a retryable failure (see
``scripts.db.sqlstate.RETRYABLE``) it is run again after a pause that doubles each time, with
jitter so that two retrying sessions do not collide again in step (the pattern of GitLab's
``with_lock_retries`` and of the AWS Architecture Blog's "Exponential Backoff And Jitter").
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from scripts.db.sqlstate import RETRYABLE, sqlstate

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Pause before retry ``n`` (1-based): ``base * 2**(n-1)``, at most ``cap``, +-``jitter``."""

    base_s: float = 0.1
    cap_s: float = 5.0
    jitter: float = 0.25

    def pause(self, attempt: int) -> float:
        delay = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        return delay * (1 + random.uniform(-self.jitter, self.jitter))


class RetriesExhausted(Exception):
    """Every attempt failed retryably; ``last`` is the final error, ``attempts`` the count."""

    def __init__(self, last: BaseException, attempts: int) -> None:
        super().__init__(str(last))
        self.last = last
        self.attempts = attempts


def is_retryable(exc: BaseException) -> bool:
    return sqlstate(exc) in RETRYABLE


def with_retries(
    fn: Callable[[], T],
    *,
    retries: int,
    backoff: Backoff = Backoff(),
    retryable: Callable[[BaseException], bool] = is_retryable,
    on_retry: Callable[[int, BaseException], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, int]:
    """``fn()`` and the number of retries it took; RetriesExhausted after ``retries`` retries.

    Errors that are not retryable propagate unchanged.
    """
    for attempt in range(retries + 1):
        try:
            return fn(), attempt
        except Exception as exc:
            if not retryable(exc):
                raise
            if attempt == retries:
                raise RetriesExhausted(exc, attempt + 1) from exc
            if on_retry is not None:
                on_retry(attempt + 1, exc)
            sleep(backoff.pause(attempt + 1))
    raise AssertionError("unreachable")
