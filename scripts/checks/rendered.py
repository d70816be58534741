"""Python revisions as the offline SQL a DBA reviews: the whole range rendered in one pass.

``alembic upgrade heads --sql`` loads every revision file once and writes each revision's
statements after a ``-- Running upgrade A -> B`` comment (Alembic's offline mode,
"Generating SQL Scripts"), so one pass gives every revision's SQL. Rendering each revision
with its own ``upgrade down:rev --sql`` would load the whole revision tree each time:
quadratic in the number of revisions.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

# Alembic writes this comment before it runs a revision's upgrade() (MigrationContext.run_migrations)
_MARKER = re.compile(r"^-- Running upgrade (?P<down>.*?) -> (?P<revision>\S+)\s*$", re.MULTILINE)
# The statements that end a revision in the offline output: the alembic_version write.
_VERSION_WRITE = re.compile(r"^(?:UPDATE|INSERT INTO|DELETE FROM) alembic_version\b", re.MULTILINE)


@dataclass
class Rendered:
    sql: dict[str, str] = field(default_factory=dict)  # revision -> its statements in BEGIN/COMMIT
    failed: dict[str, BaseException] = field(default_factory=dict)  # revision -> what upgrade() raised
    passes: int = 0  # Alembic runs: 1, plus one per revision that failed to render


def render_all(needed: set[str]) -> Rendered:
    """The offline SQL of each revision in ``needed``, from as few Alembic runs as possible.

    A revision that raises stops Alembic's run; the next run starts after it
    (``upgrade <failed>:heads``), so each failure costs one more pass, not one per revision.
    """
    result = Rendered()
    start: str | None = None
    while True:
        buffer = io.StringIO()
        result.passes += 1
        try:
            _upgrade_sql(buffer, f"{start}:heads" if start else "heads")
        except Exception as exc:  # revision code is the user's: whatever it raises is the finding
            segments = split(buffer.getvalue())
            failing = list(segments)[-1] if segments else None
            result.sql.update({rev: sql for rev, sql in segments.items() if rev != failing})
            if failing is None or failing in result.failed:
                # before any revision ran (env.py) or no progress: every revision still unrendered fails
                for rev in needed - result.sql.keys() - result.failed.keys():
                    result.failed[rev] = exc
                return result
            result.failed[failing] = exc
            start = failing
            continue
        result.sql.update(split(buffer.getvalue()))
        return result


def split(rendered: str) -> dict[str, str]:
    """Each revision's statements in the offline output, wrapped in its transaction.

    The runtime's preamble (timeouts, migration_history DDL) and the alembic_version and
    history writes are left out: they are ours, not the revision's. Alembic opened the
    revision's transaction before the marker and commits after the version write; an
    autocommit block shows inside as ``COMMIT; ... BEGIN;``.
    """
    markers = list(_MARKER.finditer(rendered))
    segments: dict[str, str] = {}
    for i, marker in enumerate(markers):
        stop = markers[i + 1].start() if i + 1 < len(markers) else len(rendered)
        end = _VERSION_WRITE.search(rendered, marker.end(), stop)
        body = rendered[marker.end() : end.start() if end else stop].strip()
        segments[marker["revision"]] = f"BEGIN;\n\n{body}\n\nCOMMIT;\n"
    return segments


def _upgrade_sql(buffer: io.StringIO, target: str) -> None:
    from alembic import command

    from scripts.migrations import api as migrations

    config = migrations.alembic_config(None, stdout=buffer)
    config.output_buffer = buffer
    config.attributes["configure_logger"] = False  # keep Alembic's INFO lines off stderr
    command.upgrade(config, target, sql=True)
