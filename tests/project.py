"""A throwaway copy of the project's migration directory, for tests that add revisions."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# The revisions every database starts from; tests of their content name them, nothing else may.
SHIPPED_REVISIONS = ("0001", "0002", "0003", "0004")


def repo_revisions() -> list[str]:
    """The repository's revisions, oldest first: the shipped ones and any added since."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(Config(str(REPO_ROOT / "alembic.ini")))
    return [rev.revision for rev in reversed(list(script.walk_revisions("base", "heads")))]


REVISIONS = repo_revisions()
HEAD = REVISIONS[-1]
NEXT_ID = f"{int(HEAD) + 1:04d}"  # the id of a revision a test adds after the head
AFTER_NEXT = f"{int(HEAD) + 2:04d}"
BEFORE_HEAD = REVISIONS[-2]
HEAD_NAME = next((REPO_ROOT / "alembic" / "versions").glob(f"{HEAD}_*.py")).stem  # migration_history's name


class ProjectCopy:
    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copy(REPO_ROOT / "alembic.ini", root / "alembic.ini")
        # ruff's settings, for the post-write hooks that format new revisions
        shutil.copy(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
        shutil.copytree(REPO_ROOT / "alembic", root / "alembic", ignore=shutil.ignore_patterns("__pycache__"))

    @property
    def head(self) -> str:
        """The single head of the copy's revisions, whatever the repository has grown to."""
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        config = Config(str(self.root / "alembic.ini"))
        [head] = ScriptDirectory.from_config(config).get_heads()
        return head

    @property
    def next_id(self) -> str:
        return f"{int(self.head) + 1:04d}"

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
