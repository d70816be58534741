"""``alp-db seed``: deterministic synthetic platform data, bulk-loaded with binary COPY.

presets      scales, the plan, the fixed window (no numpy: the CLI reads its defaults here)
catalogue    skills, items with 3PL parameters, people
activity     sessions, attempts (adaptive item selection), skill mastery; the COPY streams
copy_binary  PostgreSQL's binary COPY format from numpy columns
loader       the guarded, one-transaction loader (``seed``, ``load``)

Importing this package stays light: each public name is imported on first use, and numpy
only when rows are generated.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# public name -> the module that defines it; imported on first use (PEP 562), so that the
# CLI's `--help` (which reads only presets) does not load the loader and SQLAlchemy
_LOADER = ("ENVIRONMENT_SETTING", "FINISHING", "SEED_LOCK_KEY", "Progress", "SeedResult", "TargetState")
_HOMES = {name: "loader" for name in (*_LOADER, "check_target", "inspect_target", "load", "seed")}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name) or ("presets" if name in __all__ else None)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


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
