"""Partitions of a table partitioned by RANGE on one time column (``attempts``).

One module per job:

- ``periods``: period arithmetic and bound parsing (pure, no database);
- ``catalog``: what the catalog says about a partitioned table and its partitions;
- ``ensure_plan`` / ``ensure``: create the missing yearly (``attempts_YYYY``) or monthly
  (``attempts_YYYY_MM``) partitions, moving rows the DEFAULT partition already holds for them;
- ``listing``: bounds, estimated rows and size, the default's rows; which periods lack one;
- ``detach``: take old partitions out (the plan is exactly what runs);
- ``index``: :func:`create_partitioned_index_concurrently`, for revisions;
- ``steps``: one short transaction with a bounded lock wait, retried; ``defaults``: the defaults.

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
    from scripts.partitions.ensure import EnsureResult, ensure
    from scripts.partitions.index import create_partitioned_index_concurrently
    from scripts.partitions.listing import PartitionListing, PartitionRow, list_partitions, missing_partitions
    from scripts.partitions.periods import Period

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
    "EnsureResult": "ensure",
    "ensure": "ensure",
    "create_partitioned_index_concurrently": "index",
    "PartitionListing": "listing",
    "PartitionRow": "listing",
    "list_partitions": "listing",
    "missing_partitions": "listing",
    "Period": "periods",
}


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
    "list_partitions",
    "missing_partitions",
    "plan_detach",
    "server_version",
]
