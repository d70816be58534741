"""What a seed looks like, without numpy: the scale presets, the plan, the fixed window.

The CLI reads its choices and defaults from here, so ``alp-db --help`` never imports the
generator (numpy) and no default is written twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from scripts.errors import ConfigError


@dataclass(frozen=True)
class Scale:
    users: int
    items: int
    attempts: int


SCALES = {
    "small": Scale(users=1_000, items=500, attempts=50_000),
    "medium": Scale(users=5_000, items=2_000, attempts=1_000_000),
    "large": Scale(users=50_000, items=10_000, attempts=10_000_000),
}
DEFAULT_SCALE = "small"
DEFAULT_SEED = 42

# A fixed window, not "the last N days": the same seed must give the same rows tomorrow.
# It spans the yearly partitions attempts_2024..attempts_2026 that revision 0001 creates.
SEED_WINDOW = (
    dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
)

# Seed learners and staff have addresses at a reserved domain (RFC 2606 reserves .example):
# no real mailbox, and a seeded database is recognisable by it.
SEED_EMAIL_DOMAIN = "seed.alp-db.example"

# The tables seed writes, in load order.
SEED_TABLES = ("users", "skills", "items", "item_skills", "learning_sessions", "attempts", "skill_mastery")

# A database with more learners than this is taken for production (see scripts.seed.load).
DEFAULT_MAX_EXISTING_LEARNERS = 10_000


@dataclass(frozen=True)
class SeedPlan:
    """How much to generate, and from which seed."""

    users: int
    items: int
    attempts: int
    seed: int = DEFAULT_SEED


def make_plan(
    scale: str = DEFAULT_SCALE,
    *,
    users: int | None = None,
    items: int | None = None,
    attempts: int | None = None,
    seed: int = DEFAULT_SEED,
) -> SeedPlan:
    """A plan from a named scale, any count overridden; raises ConfigError on bad input."""
    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}", f"use one of {', '.join(SCALES)}")
    base = SCALES[scale]
    plan = SeedPlan(
        users=base.users if users is None else users,
        items=base.items if items is None else items,
        attempts=base.attempts if attempts is None else attempts,
        seed=seed,
    )
    if plan.users < 1 or plan.items < 1 or plan.attempts < 0:
        raise ConfigError("--users and --items must be at least 1, --attempts at least 0")
    if plan.seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, not {plan.seed}")
    return plan
