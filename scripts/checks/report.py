"""``validate-migrations``: are the revision files sound, and does the database agree with them?

Three kinds of check, each returning :class:`Finding` s:

- **files** (scripts.checks.files) — ``NNNN_description.py`` names with revision id ``NNNN``,
  no gaps, one head, every ``down_revision`` present, no stray SQL files;
- **lint** (scripts.checks.lint) — squawk over each revision's SQL for statements that lock or
  rewrite tables in use;
- **history** (scripts.checks.history) — ``alembic_version`` against ``migration_history`` and
  the files: applied revisions present and unchanged (checksum), history consistent and in order.

Without a database (``offline=True``, or none reachable) only files and lint are checked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from scripts.checks.files import (
    BREAKS_ALEMBIC,
    check_descriptions,
    check_files,
    check_heads,
    find_heads,
    scan_versions,
)
from scripts.checks.findings import ERROR, WARNING, Finding
from scripts.checks.history import DatabaseState, check_history, read_database_state, unchanged_applied
from scripts.checks.lint import lint_revisions
from scripts.errors import DatabaseUnreachable, DevDatabaseError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = ["ERROR", "WARNING", "Finding", "ValidationReport", "validate_migrations"]


@dataclass
class ValidationReport:
    findings: list[Finding]
    checked: list[str]  # "files", "lint", "history"
    revisions: int
    heads: list[str]
    database: str | None = None  # the database checked, password hidden
    linted: list[str] = field(default_factory=list)  # revisions whose SQL was linted
    # applied revisions not linted again: their files match the checksum recorded when applied
    lint_unchanged: list[str] = field(default_factory=list)
    errors: int = field(init=False)
    warnings: int = field(init=False)

    def __post_init__(self) -> None:
        self.errors = sum(1 for f in self.findings if f.severity == ERROR)
        self.warnings = len(self.findings) - self.errors

    @property
    def ok(self) -> bool:
        return self.errors == 0

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def validate_migrations(database_url: str | URL | None = None, *, offline: bool = False) -> ValidationReport:
    from scripts.migrations import api as migrations

    versions = migrations.versions_dir()
    revisions, findings = scan_versions(versions)
    heads = find_heads(revisions)
    findings += check_files(revisions, versions) + check_heads(heads) + check_descriptions(revisions)
    loadable = not any(f.code in BREAKS_ALEMBIC for f in findings)
    checked = ["files", "lint"]
    database = None
    state: DatabaseState | None = None
    not_checked: list[Finding] = []
    if not offline:
        from scripts.db.target import resolve_url
        from scripts.db.urls import redact

        try:
            url = resolve_url(database_url)
            state = read_database_state(url)
        except (DatabaseUnreachable, DevDatabaseError) as exc:
            not_checked.append(
                Finding(
                    "database-not-checked",
                    WARNING,
                    None,
                    f"history not checked, only the files: {exc.message}",
                    exc.hint or "pass --database-url, or --offline to check only the files",
                )
            )
        else:
            checked.append("history")
            database = redact(url)
    # the database is read first so that what it applied unchanged is not linted again
    unchanged = unchanged_applied(revisions, state) if state is not None else frozenset()
    lint = lint_revisions(revisions, alembic_can_load=loadable, unchanged=unchanged)
    findings += lint.findings + not_checked
    if state is not None:
        findings += check_history(revisions, state)
    return ValidationReport(
        findings=findings,
        checked=checked,
        revisions=sum(1 for r in revisions if r.revision),
        heads=heads,
        database=database,
        linted=lint.linted,
        lint_unchanged=lint.unchanged,
    )
