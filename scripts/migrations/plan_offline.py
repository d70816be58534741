"""The measured plan as SQL comments above each revision's block of offline SQL (``-x plan=1``).

Offline output is what a DBA reads before applying it; with ``-x plan=1`` and a reachable
database, each revision's block is headed by what ``alp-db migration plan`` measured for it.
The plan runs in a child process: it drives Alembic itself (on the scratch copy), and
Alembic's ``context`` proxy is one per process, taken by the offline run already under way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from sqlalchemy.engine import URL

from scripts.migrations.plan import MigrationPlan
from scripts.migrations.plan_report import revision_lines
from scripts.project import ENV_PROJECT_HOME, project_home

TRUTHY = frozenset({"1", "true", "yes", "on"})
# Alembic heads each revision's offline block with "-- Running upgrade A -> B, message"
# (MigrationContext.run_migrations, offline mode): the plan's comments follow that line.
RUNNING_UPGRADE = "-- Running upgrade "


def wanted(x_arguments: dict[str, str]) -> bool:
    return x_arguments.get("plan", "").lower() in TRUTHY


def measured_comments(url: URL, destination: str) -> tuple[dict[str, list[str]], str | None]:
    """SQL comment lines per revision id, or the reason there are none."""
    env = {
        **os.environ,
        # the URL goes through the environment, never argv (ps shows argv to every user)
        "DATABASE_URL": url.render_as_string(hide_password=False),
        ENV_PROJECT_HOME: str(project_home()),
    }
    argv = [sys.executable, "-m", "scripts", "migration", "plan", "--to", destination, "--format", "json"]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode not in (0, 1):
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        return {}, lines[-1].removeprefix("alp-db: error: ") if lines else "the plan could not run"
    plan = MigrationPlan.from_json(json.loads(result.stdout))
    header = f"-- alp-db plan, measured on the {plan.scratch} (alp-db migration plan):"
    return {
        rev.revision: [header, *(f"--   {line}" for line in revision_lines(rev))] for rev in plan.revisions
    }, None


def head_blocks_with_plan(context: Any, ctx: Any) -> None:
    """With ``-x plan=1``, each revision's block gets its measured plan as comments."""
    from scripts.db.target import resolve_url
    from scripts.errors import AlpDbError

    if not wanted(context.get_x_argument(as_dictionary=True)):
        return
    try:
        url = resolve_url(context.config.attributes.get("database_url"), notice=lambda _: None)
    except AlpDbError as exc:
        ctx.impl.static_output(f"-- alp-db plan: not measured ({exc})")
        return
    comments, reason = measured_comments(url, str(context.get_revision_argument() or "head"))
    if reason:
        ctx.impl.static_output(f"-- alp-db plan: not measured ({reason})")
        return
    emit = ctx.impl.static_output

    def static_output(text: str) -> None:
        emit(text)
        if text.startswith(RUNNING_UPGRADE):
            arrow = text[len(RUNNING_UPGRADE) :].split(",", 1)[0]
            revision = arrow.split("->")[-1].strip()
            for line in comments.get(revision, []):
                emit(line)

    ctx.impl.static_output = static_output
