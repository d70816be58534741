"""A throwaway copy of the project's migration directory, for tests that add revisions."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class ProjectCopy:
    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copy(REPO_ROOT / "alembic.ini", root / "alembic.ini")
        shutil.copytree(REPO_ROOT / "alembic", root / "alembic", ignore=shutil.ignore_patterns("__pycache__"))

    @property
    def versions(self) -> Path:
        return self.root / "alembic" / "versions"

    def add_revision(self, rev: str, name: str, down: str, upgrade: str, downgrade: str = "pass") -> Path:
        path = self.versions / f"{rev}_{name}.py"
        body_up = textwrap.indent(textwrap.dedent(upgrade).strip(), "    ")
        body_down = textwrap.indent(textwrap.dedent(downgrade).strip(), "    ")
        path.write_text(
            f'"""{name.replace("_", " ")}."""\n\n'
            "from alembic import op\n\n"
            f'revision = "{rev}"\n'
            f'down_revision = "{down}"\n'
            "branch_labels = None\n"
            "depends_on = None\n\n\n"
            f"def upgrade() -> None:\n{body_up}\n\n\n"
            f"def downgrade() -> None:\n{body_down}\n"
        )
        return path


def shipped_revisions() -> list[str]:
    """The repository's revision ids from base to head, whatever the head is today."""
    from scripts.checks.files import find_heads, scan_versions

    revisions, _ = scan_versions(REPO_ROOT / "alembic" / "versions")
    downs = {r.revision: r.down_revisions for r in revisions if r.revision}
    (rev,) = find_heads(revisions)
    chain = [rev]
    while downs[chain[-1]]:
        (down,) = downs[chain[-1]]
        chain.append(down)
    return chain[::-1]


SHIPPED = shipped_revisions()
HEAD = SHIPPED[-1]  # tests say HEAD, never a number, so that a new revision breaks none of them
NEXT = f"{int(HEAD) + 1:04d}"  # the id a test's extra revision takes
SHIPPED_NAMES = {
    path.name.split("_", 1)[0]: path.stem for path in (REPO_ROOT / "alembic" / "versions").glob("[0-9]*_*.py")
}  # revision id -> migration name (the file stem)
