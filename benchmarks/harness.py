"""Interleaved A/B measurement: each figure and its baseline alternate in one run.

A benchmark module exposes ``run(ctx: BenchContext) -> list[BenchResult]``. It measures
with :func:`interleave`, which warms both sides up, then alternates ours, baseline, ours,
baseline... so that drift of the machine (caches, other load) hits both equally.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL


@dataclass(frozen=True)
class Stats:
    min: float
    median: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        return cls(min(values), statistics.median(values), max(values))


@dataclass(frozen=True)
class Paired:
    """Per-run ratios ours/baseline (run i against run i of the baseline, measured side by side)
    and a distribution-free confidence interval for their median: the k-th smallest and k-th
    largest ratio, k from the binomial distribution (the sign-test interval; no normality
    assumed). With 9 pairs: 2nd to 8th, 96 %; with 7 or fewer, min to max."""

    ratios: list[float]
    median: float
    low: float
    high: float
    confidence: float

    def as_json(self) -> dict[str, Any]:
        return {
            "median": round(self.median, 3),
            "interval": [round(self.low, 3), round(self.high, 3)],
            "confidence": round(self.confidence, 3),
            "ratios": [round(r, 3) for r in self.ratios],
        }


def median_interval(values: list[float], *, confidence: float = 0.95) -> tuple[float, float, float]:
    """The sign-test confidence interval for the median of ``values``: (low, high, coverage)."""
    from math import comb

    ordered = sorted(values)
    n = len(ordered)
    below = [sum(comb(n, i) for i in range(j + 1)) / 2**n for j in range(n)]  # P(B <= j), B~Bin(n, 1/2)
    k = 1
    while k + 1 <= n // 2 and 1 - 2 * below[k] >= confidence:
        k += 1
    covered = 1 - 2 * below[k - 1] if k >= 1 else 0.0
    return ordered[k - 1], ordered[n - k], covered


def paired(ours: list[float], baseline: list[float], *, confidence: float = 0.95) -> Paired:
    ratios = [a / b for a, b in zip(ours, baseline, strict=True)]
    low, high, covered = median_interval(ratios, confidence=confidence)
    return Paired(ratios, statistics.median(ratios), low, high, covered)


def judge(
    low: float, high: float, *, at_least: float | None = None, at_most: float | None = None
) -> bool | None:
    """A target's verdict from an interval: True when all of it meets the target, False when
    none of it does, None (undecided) when it crosses the target's line, where more runs, not
    another rule, would decide. Give exactly one of ``at_least`` and ``at_most``."""
    if (at_least is None) == (at_most is None):
        raise ValueError("give exactly one of at_least and at_most")
    if at_least is not None:
        return True if low >= at_least else False if high < at_least else None
    assert at_most is not None
    return True if high <= at_most else False if low > at_most else None


def verdict_word(holds: bool | None) -> str:
    return "yes" if holds else "undecided" if holds is None else "no"


@dataclass
class BenchResult:
    """One row of the results table.

    ``ratio`` is ours/baseline of the medians in the unit given (``higher_is_better`` says
    which way is good); ``target`` is the issue's wording and ``holds`` whether it is met:
    None when the interval crosses the target (``judge``).
    """

    name: str
    unit: str
    ours: Stats
    baseline: Stats
    baseline_name: str
    ratio: float
    target: str
    holds: bool | None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ours"] = asdict(self.ours)
        data["baseline"] = asdict(self.baseline)
        return data


@dataclass
class BenchContext:
    """What every benchmark gets: a server to create databases on, and the run size."""

    admin_url: URL
    quick: bool
    workdir: Path

    @property
    def runs(self) -> int:
        return 5

    def fresh_database(self, prefix: str) -> URL:
        import uuid

        from sqlalchemy import create_engine

        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {conn.dialect.identifier_preparer.quote(name)}")
        engine.dispose()
        return self.admin_url.set(database=name)


def timed(fn: Callable[[], Any]) -> float:
    """Seconds taken by ``fn()``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleave(
    ours: Callable[[], float],
    baseline: Callable[[], float],
    *,
    runs: int = 5,
    warmup: int = 1,
) -> tuple[list[float], list[float]]:
    """Call ``ours`` and ``baseline`` alternately; each returns its own measured figure."""
    for _ in range(warmup):
        ours()
        baseline()
    a: list[float] = []
    b: list[float] = []
    for _ in range(runs):
        a.append(ours())
        b.append(baseline())
    return a, b


@contextmanager
def scratch_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="alp-db-bench-") as path:
        yield Path(path)
