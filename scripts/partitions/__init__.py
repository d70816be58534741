"""Partitions of a table partitioned by RANGE on one time column (``attempts``).

One module per job:

- ``period_math``: period arithmetic and bound parsing (pure, no database);
- ``catalog``: what the catalog says about a partitioned table and its partitions;
- ``ensure_plan`` / ``ensure_run`` / ``move``: create the missing yearly (``attempts_YYYY``) or
  monthly (``attempts_YYYY_MM``) partitions, moving rows the DEFAULT partition already holds;
- ``listing``: bounds, estimated rows and size, the default's rows; which periods lack one;
- ``detach``: take old partitions out (the plan is exactly what runs);
- ``index``: :func:`create_partitioned_index_concurrently`, for revisions;
- ``steps``: one short transaction with a bounded lock wait, retried; ``defaults``: the defaults.

No module is named like a function it exports (``ensure``, ``periods``): importing a
submodule sets the package attribute of its name, which would hide the function.

This package only re-exports the public API, and imports each module on first use (PEP 562
module ``__getattr__``), so the CLI can read ``defaults`` without loading SQLAlchemy.
Revisions import ``scripts.partitions.create_partitioned_index_concurrently``: keep it here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scripts.partitions.catalog import (
        CONCURRENT_DETACH_MIN_VERSION,
        PartitionedTable,
        describe_table,
        server_version,
    )
    from scripts.partitions.detach import DetachPlan, DetachResult, DetachStep, apply_detach, plan_detach
    from scripts.partitions.ensure_plan import infer_interval
    from scripts.partitions.ensure_run import EnsureResult, ensure
    from scripts.partitions.index import create_partitioned_index_concurrently
    from scripts.partitions.listing import PartitionListing, PartitionRow, list_partitions, missing_partitions
    from scripts.partitions.period_math import Period, period_shape, periods

# public name -> the module that defines it
_HOMES = {
    "CONCURRENT_DETACH_MIN_VERSION": "catalog",
    "PartitionedTable": "catalog",
    "describe_table": "catalog",
    "server_version": "catalog",
    "DetachPlan": "detach",
    "DetachResult": "detach",
    "DetachStep": "detach",
    "apply_detach": "detach",
    "plan_detach": "detach",
    "EnsureResult": "ensure_run",
    "ensure": "ensure_run",
    "create_partitioned_index_concurrently": "index",
    "PartitionListing": "listing",
    "PartitionRow": "listing",
    "list_partitions": "listing",
    "missing_partitions": "listing",
    "infer_interval": "ensure_plan",
    "Period": "period_math",
    "period_shape": "period_math",
    "periods": "period_math",
}


if not TYPE_CHECKING:  # mypy reads the imports above; a __getattr__ would make it accept any name

    def __getattr__(name: str) -> Any:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
        globals()[name] = value
        return value


__all__ = [
    "CONCURRENT_DETACH_MIN_VERSION",
    "DetachPlan",
    "DetachResult",
    "DetachStep",
    "EnsureResult",
    "PartitionListing",
    "PartitionRow",
    "PartitionedTable",
    "Period",
    "apply_detach",
    "create_partitioned_index_concurrently",
    "describe_table",
    "ensure",
    "infer_interval",
    "list_partitions",
    "missing_partitions",
    "period_shape",
    "periods",
    "plan_detach",
    "server_version",
]
