"""Progress of a batched data migration: a rich bar on a terminal, quiet lines otherwise.

Progress goes to stderr so that results on stdout pipe cleanly (house style). The unit of
progress is the key walked, not the row changed: every batch walks ``batch_size`` keys
whether or not they match WHERE, so keys walked against the table's size gives the ETA.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol, TextIO

LINE_INTERVAL_S = 5.0  # a log line every few seconds is enough for a job nobody watches live


class Reporter(Protocol):
    def start(self, *, name: str, total: int | None, walked: int, updated: int) -> None: ...

    def batch(self, *, walked: int, updated: int) -> None: ...

    def retry(self, message: str) -> None: ...

    def pause(self, message: str) -> None: ...

    def finish(self, summary: str) -> None: ...


class Silent:
    """No progress at all: library callers and tests."""

    def start(self, *, name: str, total: int | None, walked: int, updated: int) -> None:
        pass

    def batch(self, *, walked: int, updated: int) -> None:
        pass

    def retry(self, message: str) -> None:
        pass

    def pause(self, message: str) -> None:
        pass

    def finish(self, summary: str) -> None:
        pass


class _Rate:
    """Rows walked per second in this run, and the time left at that rate."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.name = ""
        self.total: int | None = None
        self.walked = self.updated = self.walked_at_start = 0

    def begin(self, name: str, total: int | None, walked: int, updated: int) -> None:
        self.started = time.monotonic()
        self.name, self.total = name, total
        self.walked = self.walked_at_start = walked
        self.updated = updated

    def add(self, walked: int, updated: int) -> None:
        self.walked += walked
        self.updated += updated
        if self.total is not None:
            self.total = max(self.total, self.walked)  # the size is an estimate (pg_class.reltuples)

    @property
    def per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return (self.walked - self.walked_at_start) / elapsed if elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.per_second
        if self.total is None or rate <= 0:
            return None
        return max(self.total - self.walked, 0) / rate


class LineReporter:
    """One line every ``interval_s`` on a stream that is not a terminal (CI logs, cron mail)."""

    def __init__(self, stream: TextIO, interval_s: float = LINE_INTERVAL_S) -> None:
        self.stream = stream
        self.interval_s = interval_s
        self.rate = _Rate()
        self.last_line = 0.0

    def _write(self, line: str) -> None:
        print(f"alp-db: {line}", file=self.stream, flush=True)

    def start(self, *, name: str, total: int | None, walked: int, updated: int) -> None:
        self.rate.begin(name, total, walked, updated)
        self.last_line = time.monotonic()
        resumed = f", resuming after {walked} rows walked" if walked else ""
        size = f"~{total} rows" if total is not None else "size unknown"
        self._write(f"data migration {name}: started ({size}{resumed})")

    def batch(self, *, walked: int, updated: int) -> None:
        self.rate.add(walked, updated)
        now = time.monotonic()
        if now - self.last_line >= self.interval_s:
            self.last_line = now
            self._write(self.describe())

    def describe(self) -> str:
        r = self.rate
        share = f" ({100 * r.walked / r.total:.0f}%)" if r.total else ""
        eta = f", ETA {r.eta_s:.0f}s" if r.eta_s is not None else ""
        return (
            f"data migration {r.name}: {r.walked} rows walked{share}, {r.updated} updated,"
            f" {r.per_second:.0f} rows/s{eta}"
        )

    def retry(self, message: str) -> None:
        self._write(f"data migration {self.rate.name}: {message}")

    def pause(self, message: str) -> None:
        self._write(f"data migration {self.rate.name}: {message}")

    def finish(self, summary: str) -> None:
        self._write(summary)


class RichReporter:
    """A progress bar with rows walked, rows updated, rate and ETA, on a terminal's stderr."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console

        self.console = Console(file=stream)
        self.rate = _Rate()
        self.progress: Any = None
        self.task: Any = None

    def start(self, *, name: str, total: int | None, walked: int, updated: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.rate.begin(name, total, walked, updated)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows walked, {task.fields[updated]} updated, {task.fields[rate]} rows/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task(name, total=total, completed=walked, updated=updated, rate=0)

    def batch(self, *, walked: int, updated: int) -> None:
        self.rate.add(walked, updated)
        self.progress.update(
            self.task,
            total=self.rate.total,
            completed=self.rate.walked,
            updated=self.rate.updated,
            rate=f"{self.rate.per_second:.0f}",
        )

    def retry(self, message: str) -> None:
        self.progress.console.print(f"alp-db: {message}")

    def pause(self, message: str) -> None:
        self.progress.console.print(f"alp-db: {message}")

    def finish(self, summary: str) -> None:
        if self.progress is not None:
            self.progress.stop()
        self.console.print(f"alp-db: {summary}")


def for_stream(stream: TextIO | None = None) -> Reporter:
    """A bar on a terminal, quiet lines otherwise (house style: no spinner off a terminal)."""
    out = stream or sys.stderr
    return RichReporter(out) if out.isatty() else LineReporter(out)
