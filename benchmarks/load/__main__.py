"""``python -m benchmarks.load [--quick] [--only KEY]``: alp-db's operations under the platform's load.

Starts its own throwaway PostgreSQL (embedded, or ALP_DB_PG_BINDIR; Unix socket only), seeds
one database (medium: 1,000,000 attempts; --quick: small, 50,000) and, for each operation of
``benchmarks.load.scenarios`` on a fresh copy of it, runs pgbench ``-c 4 -j 2`` with the
platform's three statements: a baseline window, then the operation, in one pgbench run.
Writes benchmarks/results/load-pgNN[-quick].json and .md (the tables the README includes);
with --only it prints the table and writes nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from benchmarks.load.pgbench import CLIENTS, LOAD_KEYS, THREADS
from benchmarks.load.run import Outcome, Server, run
from benchmarks.load.scenarios import scenarios

RESULTS = Path(__file__).resolve().parents[1] / "results"
SERVER_SETTINGS = {"max_connections": "60", "shared_buffers": "256MB", "max_wal_size": "4GB"}
BASELINE_S = {"full": 10.0, "quick": 3.0}
SCALE = {"full": "medium", "quick": "small"}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small seed, 30,000 rows to move, short windows")
    parser.add_argument("--only", action="append", help="run only these scenarios (ensure, detach, ...)")
    args = parser.parse_args()
    size = "quick" if args.quick else "full"

    from sqlalchemy import create_engine

    from scripts import seed
    from scripts.db.devdb import Cluster
    from scripts.migrations import api as migrations

    home = Path(tempfile.mkdtemp(prefix="alp-db-load-"))
    cluster = Cluster(home=home / "pg", settings=SERVER_SETTINGS)
    outcomes: list[Outcome] = []
    try:
        cluster.ensure_running()
        admin_url = cluster.url("postgres")
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        prep = admin.dialect.identifier_preparer
        template = "load_template"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {prep.quote(template)}")
        template_url = admin_url.set(database=template)
        migrations.upgrade(template_url)
        print(f"seeding {SCALE[size]} ...", flush=True)
        seed.seed(template_url, seed.make_plan(SCALE[size]))
        server = Server(cluster.bindir, str(cluster.socket_dir), str(cluster.port), admin_url.username or "")
        conn = server.connect(template, "load-setup")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(LOAD_KEYS)
            cur.execute("SELECT count(*) FROM load_keys")
            nkeys = int(cur.fetchone()[0])
            cur.execute("VACUUM ANALYZE")
        conn.close()
        for scenario in scenarios(size):
            if args.only and scenario.key not in args.only:
                continue
            name = f"load_{scenario.key}"
            with admin.connect() as c:
                c.exec_driver_sql(f"CREATE DATABASE {prep.quote(name)} TEMPLATE {prep.quote(template)}")
            try:
                if scenario.prepare:
                    conn = server.connect(name, "load-setup")
                    conn.autocommit = True
                    with conn.cursor() as cur:
                        scenario.prepare(cur, size)
                    conn.close()
                url = admin_url.set(database=name).render_as_string(hide_password=False)
                print(f"{scenario.key}: {scenario.title}", flush=True)
                outcome = run(scenario, server, name, url, home, nkeys=nkeys, baseline_s=BASELINE_S[size])
                outcomes.append(outcome)
                print("  " + row(outcome), flush=True)
            finally:
                with admin.connect() as c:
                    c.exec_driver_sql(f"DROP DATABASE IF EXISTS {prep.quote(name)} WITH (FORCE)")
        version = cluster.server_version()
        admin.dispose()
    finally:
        cluster.destroy()
        shutil.rmtree(home, ignore_errors=True)
    write(outcomes, version, size, partial=bool(args.only))


def row(o: Outcome) -> str:
    b, d = o.baseline, o.during
    return (
        f"{o.operation_s:g} s ({o.connected_s:g} s connected), exit {o.exit_code}; "
        f"throughput x{o.throughput_ratio}; "
        f"p99 {b['p99_ms']} -> {d['p99_ms']} ms; max {b['max_ms']} -> {d['max_ms']} ms; "
        f"aborted clients {o.aborted_clients}; longest wait on its locks {o.longest_wait_on_operation_ms} ms"
        f" (target {o.target_ms:g}): {'holds' if o.holds else 'DOES NOT HOLD'}; slowest client statement"
        f" {o.slowest_client_statement_ms} ms ({o.slowest_statement_waits or '-'})"
    )


def markdown(outcomes: list[Outcome], version: str, size: str) -> str:
    head = (
        f"Load harness (`python -m benchmarks.load{' --quick' if size == 'quick' else ''}`), PostgreSQL "
        f"{version}, pgbench -c {CLIENTS} -j {THREADS}, {SCALE[size]} seed. Latencies are whole pgbench"
        " transactions (insert + read 20 + update); 'before' is the baseline window,"
        " 'during' the time the operation was connected.\n\n"
        "| operation | took (connected) | exit | throughput during/before | p99 before → during"
        " | max before → during | aborted clients | longest client wait on its locks | target | holds"
        " | slowest client statement (what it waited on, in 20 ms samples) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for o in outcomes:
        b, d = o.baseline, o.during
        cells = [
            o.title, f"{o.operation_s:g} s ({o.connected_s:g} s)", str(o.exit_code), f"{o.throughput_ratio}x",
            f"{b['p99_ms']} → {d['p99_ms']} ms", f"{b['max_ms']} → {d['max_ms']} ms", str(o.aborted_clients),
            f"{o.longest_wait_on_operation_ms} ms", o.target, "yes" if o.holds else "no",
            f"{o.slowest_client_statement_ms} ms ({o.slowest_statement_waits or '-'})"
            if o.slowest_client_statement_ms else "none over 100 ms",
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


def write(outcomes: list[Outcome], version: str, size: str, *, partial: bool) -> None:
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "server_version": version,
        "size": size,
        "seed_scale": SCALE[size],
        "clients": CLIENTS,
        "threads": THREADS,
        "results": [asdict(o) for o in outcomes],
    }
    table = markdown(outcomes, version, size)
    print(table)
    if partial:  # a subset would overwrite the full table with fewer rows
        print("(--only: results printed, not written)")
        return
    stem = RESULTS / f"load-pg{version.split('.')[0]}{'-quick' if size == 'quick' else ''}"
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    stem.with_suffix(".md").write_text(table)


if __name__ == "__main__":
    main()
