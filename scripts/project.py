"""Where the project lives: the directory holding alembic.ini."""

from __future__ import annotations

import os
from pathlib import Path

ENV_PROJECT_HOME = "ALP_DB_HOME"


def project_home() -> Path:
    """The project root: ``ALP_DB_HOME``, else the nearest directory holding alembic.ini."""
    configured = os.environ.get(ENV_PROJECT_HOME)
    if configured:
        return Path(configured).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "alembic.ini").is_file():
            return candidate
    return Path(__file__).resolve().parent.parent
