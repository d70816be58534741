"""Copy the repository and add one trivial revision after its head, for the suite to run on.

Proves that nothing in the tests (or the tools) assumes the shipped head: `.ci/run` runs a
part of the suite in the copy. Usage: python .ci/extra_revision.py DESTINATION
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

# Schema-neutral on purpose (no model describes it, so alembic check and validate-schema stay
# clean): what is tested is that one more revision exists, not what it does.
REVISION = '''"""Refresh the planner's statistics on items: a stand-in for the team's next revision.

Revision ID: {rev}
Revises: {down}

What it locks: SHARE UPDATE EXCLUSIVE on items while ANALYZE samples it; reads and writes go on.
"""

from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ANALYZE items")


def downgrade() -> None:
    op.execute("ANALYZE items")  # statistics are not schema: nothing to undo but a fresh sample
'''


def main(destination: Path) -> None:
    source = Path(__file__).resolve().parent.parent
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=source, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    for name in files:
        if (source / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, destination / name)
    [head] = ScriptDirectory.from_config(Config(str(destination / "alembic.ini"))).get_heads()
    rev = f"{int(head) + 1:04d}"
    path = destination / "alembic" / "versions" / f"{rev}_analyze_items.py"
    path.write_text(REVISION.format(rev=rev, down=head))
    print(f"{destination}: added {path.name} after {head}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
