"""``alp-db validate-migrations`` on an old project: 100, 300 and 1,000 revisions.

A temporary copy of the project (alembic.ini, alembic/) gets that many trivial revisions
(``op.execute("SELECT 1")`` each) after the shipped head. Both sides are one process in that
copy, alternating (harness.interleave):

- ours: ``alp-db validate-migrations --offline`` — files, ids, heads, and squawk over every
  revision's SQL (offline, so no revision is skipped as applied-and-unchanged: the worst case);
- baseline: ``alembic upgrade head --sql`` over the same revisions — what rendering the SQL
  once costs, which the lint cannot do without.

Targets (issue: cost that grows with the work): at 1,000 revisions at most 2x the baseline,
and the 300 -> 1,000 growth of ours at most 4x (3.3x the revisions: linear, not quadratic).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import BenchContext, BenchResult, Stats, interleave, judge, paired, timed

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SIZES = (100, 300, 1000)
TARGET_RATIO = 2.0
TARGET_GROWTH = 4.0

TRIVIAL_REVISION = '''\
"""Trivial step {rev} of a long history (benchmark).

Revision ID: {rev}
Revises: {down}

What it locks: nothing; SELECT 1 reads no table.
"""

from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT 1")


def downgrade() -> None:
    op.execute("SELECT 1")
'''


def project_with_revisions(workdir: Path, count: int) -> Path:
    """A copy of the project with ``count`` trivial revisions after the shipped head."""
    from scripts.checks.files import find_heads, scan_versions

    root = workdir / f"validate-migrations-{count}"
    if root.exists():
        return root
    root.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "alembic.ini", root / "alembic.ini")
    shutil.copytree(REPO_ROOT / "alembic", root / "alembic", ignore=shutil.ignore_patterns("__pycache__"))
    versions = root / "alembic" / "versions"
    (head,) = find_heads(scan_versions(versions)[0])
    down = head
    for n in range(int(head) + 1, int(head) + 1 + count):
        rev = f"{n:04d}"
        (versions / f"{rev}_step_{rev}.py").write_text(TRIVIAL_REVISION.format(rev=rev, down=down))
        down = rev
    return root


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])} failed ({result.returncode}): {result.stdout[-500:]}")


def measure(ctx: BenchContext, count: int) -> tuple[list[float], list[float]]:
    root = project_with_revisions(ctx.workdir, count)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["ALP_DB_HOME"] = str(root)
    ours = [str(BIN / "alp-db"), "validate-migrations", "--offline"]
    baseline = [str(BIN / "alembic"), "upgrade", "head", "--sql"]
    return interleave(
        lambda: timed(lambda: _run(ours, root, env)),
        lambda: timed(lambda: _run(baseline, root, env)),
        runs=ctx.runs,
    )


def run(ctx: BenchContext) -> list[BenchResult]:
    """The same sizes and runs under --quick: at 5 pairs the verdicts already rest on the
    sign-test interval (harness.paired), and smaller trees would not show the growth."""
    results: list[BenchResult] = []
    measured: dict[int, tuple[list[float], list[float]]] = {}
    for count in SIZES:
        measured[count] = measure(ctx, count)
    for count in SIZES:
        ours_s, base_s = measured[count]
        spread = paired(ours_s, base_s)
        extra: dict[str, object] = {"revisions_added": count, "paired_ratio": spread.as_json()}
        target = "(reported; the targets are at 1,000)"
        holds: bool | None = True
        if count == SIZES[-1]:
            # run i at 1,000 against run i at 300: the growth, with its interval
            growth = paired(ours_s, measured[SIZES[1]][0])
            extra["growth_from_300"] = growth.as_json()
            target = (
                f"<= {TARGET_RATIO:g}x alembic upgrade head --sql; 300 -> 1,000 growth <= {TARGET_GROWTH:g}x"
            )
            verdicts = (
                judge(spread.low, spread.high, at_most=TARGET_RATIO),
                judge(growth.low, growth.high, at_most=TARGET_GROWTH),
            )
            holds = False if False in verdicts else None if None in verdicts else True
        results.append(
            BenchResult(
                name=f"validate-migrations, {count} revisions added",
                unit="s",
                ours=Stats.of(ours_s),
                baseline=Stats.of(base_s),
                baseline_name="alembic upgrade head --sql, same revisions, one process",
                ratio=round(spread.median, 3),
                target=target,
                holds=holds,
                extra=extra,
            )
        )
    return results
