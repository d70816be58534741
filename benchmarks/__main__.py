"""``python -m benchmarks [--quick]``: every benchmark beside its baseline, one table, one JSON file.

Starts its own throwaway PostgreSQL (embedded 18, or ALP_DB_PG_BINDIR), runs each benchmark
module's ``run(ctx)``, prints the table and writes benchmarks/results/latest.json
(``--quick``: latest-quick.json, so a quick run never replaces the full one).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import platform
import shutil
import tempfile
from pathlib import Path

from benchmarks.harness import BenchContext, BenchResult, verdict_word

# Each module exposes run(ctx) -> list[BenchResult]; the order is the table's.
MODULES = [
    "bench_migrate",
    "bench_validator",
    "bench_validate_migrations",
    "bench_backfill",
    "bench_partitions",
    "bench_attempts_write",
    "bench_seed",
]
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
# --quick writes beside the full run's results, never over them: the README's table is a full run.
QUICK_RESULTS = RESULTS.with_name("latest-quick.json")
SERVER_SETTINGS = {"max_connections": "120", "shared_buffers": "256MB", "max_wal_size": "4GB"}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller data only where the verdict does not depend on the size (see each module)",
    )
    parser.add_argument("--only", action="append", help="run only these modules (e.g. bench_migrate)")
    args = parser.parse_args()

    from scripts.db.devdb import Cluster

    home = Path(tempfile.mkdtemp(prefix="alp-db-bench-"))
    cluster = Cluster(home=home / "pg", settings=SERVER_SETTINGS)
    results: list[BenchResult] = []
    try:
        cluster.ensure_running()
        ctx = BenchContext(admin_url=cluster.url("postgres"), quick=args.quick, workdir=home)
        for name in args.only or MODULES:
            module = importlib.import_module(f"benchmarks.{name}")
            for result in module.run(ctx):
                results.append(result)
                print_row(result)
        server_version = cluster.server_version()
    finally:
        cluster.destroy()
        shutil.rmtree(home, ignore_errors=True)
    write(results, server_version, args.quick, partial=bool(args.only))
    print_table(results)


def print_row(result: BenchResult) -> None:
    verdict = {True: "holds", False: "DOES NOT HOLD", None: "UNDECIDED (the interval crosses the target)"}[
        result.holds
    ]
    print(f"  {result.name}: ratio {result.ratio} ({result.target}) {verdict}", flush=True)


def print_table(results: list[BenchResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="alp-db benchmarks (median of interleaved runs)")
    for col in ["benchmark", "ours (median)", "baseline (median)", "baseline", "ratio", "target", "holds"]:
        table.add_column(col)
    for r in results:
        table.add_row(
            r.name,
            f"{r.ours.median:.4g} {r.unit}",
            f"{r.baseline.median:.4g} {r.unit}",
            r.baseline_name,
            f"{r.ratio}",
            r.target,
            verdict_word(r.holds).upper() if r.holds is not True else "yes",
        )
    Console(width=200).print(table)


def write(results: list[BenchResult], server_version: str, quick: bool, *, partial: bool = False) -> None:
    """Write latest.json; with --only, replace only the rows measured (by name), keep the rest."""
    import alembic
    import sqlalchemy

    path = QUICK_RESULTS if quick else RESULTS
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpus": __import__("os").cpu_count(),
            "python": platform.python_version(),
        },
        "versions": {
            "postgresql": server_version,
            "sqlalchemy": sqlalchemy.__version__,
            "alembic": alembic.__version__,
        },
        "benchmarks": [r.as_json() for r in results],
    }
    if partial and path.exists():
        # the other rows keep their run's date and settings; the new ones are listed as partial
        previous = json.loads(path.read_text())
        fresh = {r.name for r in results}
        kept = [b for b in previous["benchmarks"] if b["name"] not in fresh]
        data = {
            **previous,
            "benchmarks": kept + data["benchmarks"],
            "partial": sorted(fresh | set(previous.get("partial", []))),
        }
    path.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
