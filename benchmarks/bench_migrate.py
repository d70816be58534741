"""Migrating an empty database to head, and CLI start-up.

- ``alp-db migrate`` as a process vs a bare Alembic environment (a plain env.py with none of
  our runtime: no lock, no timeouts, no history) running the same revisions as a process;
  ``psql -1 -f`` of the same offline SQL is reported as the floor.
- ``alp-db --help`` vs ``alembic --help``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import BenchContext, BenchResult, Stats, interleave, timed
from scripts.devdb import embedded_bindir

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

BARE_ENV_PY = """\
from alembic import context
from sqlalchemy import create_engine
import os

engine = create_engine(os.environ["BARE_URL"])
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
"""


def _bare_project(workdir: Path) -> Path:
    """Alembic's own generic template reduced to its core, over a copy of our versions."""
    root = workdir / "bare-alembic"
    if root.exists():
        return root
    (root / "alembic").mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "alembic" / "versions", root / "alembic" / "versions")
    (root / "alembic" / "env.py").write_text(BARE_ENV_PY)
    shutil.copy(REPO_ROOT / "alembic" / "script.py.mako", root / "alembic" / "script.py.mako")
    (root / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/alembic\nprepend_sys_path = .\npath_separator = os\n"
    )
    return root


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(extra)
    return env


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {result.stderr.strip()[-500:]}")


def _libpq_env(url_query_host: str, port: str, database: str) -> dict[str, str]:
    return _env(PGHOST=url_query_host, PGPORT=port, PGUSER="postgres", PGDATABASE=database)


def run(ctx: BenchContext) -> list[BenchResult]:
    bare = _bare_project(ctx.workdir)
    sql_file = ctx.workdir / "upgrade.sql"
    with sql_file.open("w") as out:
        _run_offline(out)

    def url_string(prefix: str) -> tuple[str, str]:
        url = ctx.fresh_database(prefix)
        return url.render_as_string(hide_password=False), str(url.database)

    def ours() -> float:
        url, _ = url_string("bench_ours")
        return timed(lambda: _run([str(BIN / "alp-db"), "migrate"], REPO_ROOT, _env(DATABASE_URL=url)))

    def bare_alembic() -> float:
        url, _ = url_string("bench_bare")
        return timed(lambda: _run([str(BIN / "alembic"), "upgrade", "head"], bare, _env(BARE_URL=url)))

    def psql_floor() -> float:
        _, database = url_string("bench_psql")
        query = dict(ctx.admin_url.query)
        env = _libpq_env(str(query.get("host", "")), str(query.get("port", "5432")), database)
        argv = [
            str(embedded_bindir() / "psql"),
            "-X",
            "-q",
            "-1",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            str(sql_file),
        ]
        return timed(lambda: _run(argv, REPO_ROOT, env))

    ours_s, bare_s = interleave(ours, bare_alembic, runs=ctx.runs)
    floor_s, _ = interleave(psql_floor, lambda: 0.0, runs=ctx.runs)
    migrate_ratio = Stats.of(ours_s).median / Stats.of(bare_s).median

    help_ours, help_alembic = interleave(
        lambda: timed(lambda: _run([str(BIN / "alp-db"), "--help"], REPO_ROOT, _env())),
        lambda: timed(lambda: _run([str(BIN / "alembic"), "--help"], REPO_ROOT, _env())),
        runs=ctx.runs,
    )
    help_ratio = Stats.of(help_ours).median / Stats.of(help_alembic).median
    return [
        BenchResult(
            name="migrate an empty database to head",
            unit="s",
            ours=Stats.of(ours_s),
            baseline=Stats.of(bare_s),
            baseline_name="bare Alembic env.py, same revisions",
            ratio=round(migrate_ratio, 3),
            target="<= 1.15x bare Alembic",
            holds=migrate_ratio <= 1.15,
            extra={"floor_psql_1_f_s": Stats.of(floor_s).__dict__},
        ),
        BenchResult(
            name="CLI start-up",
            unit="s",
            ours=Stats.of(help_ours),
            baseline=Stats.of(help_alembic),
            baseline_name="alembic --help",
            ratio=round(help_ratio, 3),
            target="<= 0.5x alembic --help",
            holds=help_ratio <= 0.5,
        ),
    ]


def _run_offline(out) -> None:  # type: ignore[no-untyped-def]
    from scripts import migrations

    migrations.upgrade(None, "head", sql=True, output=out)
