"""``partitions detach``: take old partitions out (the plan is exactly what runs).

DETACH ... CONCURRENTLY (PostgreSQL 14+) where allowed; PostgreSQL refuses it while a DEFAULT
partition exists, and then a plain DETACH takes ACCESS EXCLUSIVE on the parent for a
catalog-only change (milliseconds once granted), with a bounded lock wait and retries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from scripts.db.durations import duration
from scripts.partitions.catalog import (
    CONCURRENT_DETACH_MIN_VERSION,
    describe_table,
    quote_name,
    server_version,
)
from scripts.partitions.defaults import DEFAULT_LOCK_TIMEOUT, DEFAULT_RETRIES
from scripts.partitions.period_math import Period, parse_date
from scripts.partitions.steps import pinned_session, run_step, transaction


@dataclass(frozen=True)
class DetachStep:
    statement: str
    # For DETACH ... CONCURRENTLY: the partition (quoted) and the statement that completes
    # the same detach if an interruption left it pending ("ALTER TABLE", DETACH ... FINALIZE).
    partition: str | None = None
    finalize: str | None = None


@dataclass(frozen=True)
class DetachPlan:
    """Exactly the statements :func:`apply_detach` runs, in order; ``--dry-run`` prints them."""

    table: str
    older_than: date
    partitions: tuple[Period, ...]
    drop: bool
    concurrently: bool
    why_not_concurrently: str | None
    steps: tuple[DetachStep, ...]

    @property
    def statements(self) -> tuple[str, ...]:
        return tuple(step.statement for step in self.steps)

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "older_than": self.older_than.isoformat(),
            "partitions": [p.as_json() for p in self.partitions],
            "drop": self.drop,
            "concurrently": self.concurrently,
            "why_not_concurrently": self.why_not_concurrently,
            "statements": list(self.statements),
        }


@dataclass
class DetachResult:
    plan: DetachPlan
    executed: list[str] = field(default_factory=list)


def plan_detach(conn: Connection, table: str, older_than: str | date, *, drop: bool = False) -> DetachPlan:
    """The partitions wholly older than ``older_than`` (upper bound at or before its UTC midnight),
    never the default one, and the statements that take them out."""
    cutoff_day = parse_date(older_than, "--older-than")
    cutoff = datetime(cutoff_day.year, cutoff_day.month, cutoff_day.day, tzinfo=timezone.utc)
    with transaction(conn), pinned_session(conn, None):
        info = describe_table(conn, table)
        version = server_version(conn)
    old = tuple(p for p in info.partitions if p.end is not None and p.end <= cutoff)
    why_not = None
    if version < CONCURRENT_DETACH_MIN_VERSION:
        why_not = "the server is older than PostgreSQL 14"
    elif info.default_partition:
        # "ALTER TABLE": CONCURRENTLY "cannot be used when the partitioned table has a default partition"
        why_not = f"{info.name} has a default partition ({info.default_partition})"
    concurrently = why_not is None
    parent = quote_name(conn, info.schema, info.name)
    steps: list[DetachStep] = []
    for part in old:
        child = quote_name(conn, info.schema, part.name)
        finalize = f"ALTER TABLE {parent} DETACH PARTITION {child} FINALIZE"
        if part.name in info.detach_pending:
            # an interrupted DETACH ... CONCURRENTLY left it half-detached: finish that one
            steps.append(DetachStep(finalize))
        elif concurrently:
            steps.append(
                DetachStep(f"ALTER TABLE {parent} DETACH PARTITION {child} CONCURRENTLY", child, finalize)
            )
        else:
            steps.append(DetachStep(f"ALTER TABLE {parent} DETACH PARTITION {child}"))
        if drop:
            steps.append(DetachStep(f"DROP TABLE {child}"))
    return DetachPlan(info.name, cutoff_day, old, drop, concurrently, why_not, tuple(steps))


def apply_detach(
    conn: Connection,
    plan: DetachPlan,
    *,
    lock_timeout: str | None = None,
    retries: int = DEFAULT_RETRIES,
    on_retry: Callable[[int], None] | None = None,
) -> DetachResult:
    """Run the plan's statements, each on its own (CONCURRENTLY cannot run in a transaction
    block), each with a bounded lock wait and retries.

    DETACH ... CONCURRENTLY runs as two transactions; if the second one's wait (for every
    query that may still see the partition) times out, the partition is left "pending
    detach", and the retry completes that same detach with DETACH ... FINALIZE.
    """
    timeout = duration("lock_timeout", lock_timeout or DEFAULT_LOCK_TIMEOUT)
    if conn.in_transaction():
        conn.commit()
    auto = conn.execution_options(isolation_level="AUTOCOMMIT")
    result = DetachResult(plan)
    try:
        auto.execute(text("SELECT set_config('lock_timeout', :lt, false)"), {"lt": timeout})
        for step in plan.steps:

            def run(step: DetachStep = step) -> str:
                sql = step.statement
                if step.finalize and step.partition and _detach_pending(auto, step.partition):
                    sql = step.finalize
                auto.execute(text(sql))
                return sql

            done, _ = run_step(
                conn, run, retries=retries, what=step.statement, lock_timeout=timeout, on_retry=on_retry
            )
            result.executed.append(done)
    finally:
        if not conn.invalidated:  # a lost connection has no session settings left to reset
            auto.execute(text("RESET lock_timeout"))
            auto.commit()
            conn.execution_options(isolation_level=conn.default_isolation_level)
    return result


def _detach_pending(conn: Connection, partition: str) -> bool:
    return bool(
        conn.execute(
            text("SELECT bool_or(inhdetachpending) FROM pg_inherits WHERE inhrelid = to_regclass(:rel)"),
            {"rel": partition},
        ).scalar()
    )


# --------------------------------------------------------------------------------------------
