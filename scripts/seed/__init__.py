"""``alp-db seed``: deterministic synthetic platform data, bulk-loaded with binary COPY.

presets      scales, the plan, the fixed window (no numpy: the CLI reads its defaults here)
catalogue    skills, items with 3PL parameters, people
activity     sessions, attempts (adaptive item selection), skill mastery; the COPY streams
copy_binary  PostgreSQL's binary COPY format from numpy columns
loader       the guarded, one-transaction loader (``seed``, ``load``)

Importing this package stays light: numpy is imported only when rows are generated.
"""

from scripts.seed.loader import (
    ENVIRONMENT_SETTING,
    FINISHING,
    SEED_LOCK_KEY,
    Progress,
    SeedResult,
    TargetState,
    check_target,
    inspect_target,
    load,
    seed,
)
from scripts.seed.presets import (
    DEFAULT_MAX_EXISTING_LEARNERS,
    DEFAULT_SCALE,
    DEFAULT_SEED,
    SCALES,
    SEED_EMAIL_DOMAIN,
    SEED_TABLES,
    SEED_WINDOW,
    Scale,
    SeedPlan,
    make_plan,
)

__all__ = [
    "DEFAULT_MAX_EXISTING_LEARNERS",
    "DEFAULT_SCALE",
    "DEFAULT_SEED",
    "ENVIRONMENT_SETTING",
    "FINISHING",
    "SCALES",
    "SEED_EMAIL_DOMAIN",
    "SEED_LOCK_KEY",
    "SEED_TABLES",
    "SEED_WINDOW",
    "Progress",
    "Scale",
    "SeedPlan",
    "SeedResult",
    "TargetState",
    "check_target",
    "inspect_target",
    "load",
    "make_plan",
    "seed",
]
