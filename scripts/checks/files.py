"""Revision files read without importing them: names, ids, heads, stray SQL files.

Read statically (``ast``), so a broken tree is reported rather than crashing Alembic's
revision map (which raises on a missing ``down_revision``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from scripts.checks.findings import ERROR, WARNING, Finding
from scripts.migrations import history

FILE_NAME = re.compile(r"^(?P<number>\d{4})_(?P<slug>[a-z0-9]+(?:_[a-z0-9]+)*)\.py$")
NUMBER_PREFIX = re.compile(r"^(?P<number>\d{4})(?!\d)")
# Python files in versions/ that are not revisions (Alembic skips the same ones).
NOT_REVISION_FILES = frozenset({"__init__.py"})
EDITOR_LOCK_PREFIX = ".#"
WAIVER_NAME = "squawk_ignore"  # module-level tuple of squawk rules a revision waives
# File findings after which Alembic cannot build its revision map, so cannot render offline SQL.
BREAKS_ALEMBIC = frozenset({"unreadable-revision", "duplicate-revision", "unknown-down-revision"})


@dataclass(frozen=True)
class RevisionFile:
    path: Path
    revision: str | None
    down_revisions: tuple[str, ...]
    number: str | None  # the file name's leading NNNN, if it has one
    # squawk rules the revision waives as a whole: ``squawk_ignore = ("rule",)`` in its module,
    # with a comment saying why (for .sql files, ``-- squawk-ignore rule`` above a statement).
    squawk_ignore: tuple[str, ...] = ()
    sql_files: tuple[Path, ...] = ()  # the SQL files beside it (scripts.migrations.history.revision_files)
    docstring: str | None = None

    @property
    def files(self) -> tuple[Path, ...]:
        """Its module and SQL files: what its checksum covers."""
        return (self.path, *self.sql_files)

    def checksum(self) -> str:
        return history.checksum_of(self.files)


def scan_versions(versions: Path) -> tuple[list[RevisionFile], list[Finding]]:
    """Every revision module in ``versions`` with its ids, read without importing it."""
    revisions: list[RevisionFile] = []
    findings: list[Finding] = []
    sql_by_stem = history.sql_files_by_stem(versions)
    for path in sorted(versions.glob("*.py")):
        if path.name in NOT_REVISION_FILES or path.name.startswith(EDITOR_LOCK_PREFIX):
            continue
        leading = NUMBER_PREFIX.match(path.name)
        number = leading["number"] if leading else None
        try:
            ids = _module_ids(path)
        except (SyntaxError, ValueError) as exc:
            findings.append(
                Finding(
                    "unreadable-revision",
                    ERROR,
                    number,
                    f"{path.name}: cannot read its revision ids ({exc})",
                    "revision and down_revision must be plain string literals (or None / a tuple of strings)",
                )
            )
            revisions.append(RevisionFile(path, None, (), number))
            continue
        revision, downs, waived, doc = ids
        sql = sql_by_stem.get(path.stem, ())
        revisions.append(RevisionFile(path, revision, downs, number, waived, sql, doc))
    return revisions, findings


def _module_ids(path: Path) -> tuple[str, tuple[str, ...], tuple[str, ...], str | None]:
    """revision, down_revisions, squawk_ignore and docstring of a revision module, read statically."""
    values: dict[str, object] = {}
    module = ast.parse(path.read_text(), filename=path.name)
    for node in module.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision", WAIVER_NAME):
            values[target.id] = ast.literal_eval(value)
    revision = values.get("revision")
    if not isinstance(revision, str) or not revision:
        raise ValueError("no `revision = '...'` string")
    downs = _strings(values.get("down_revision"), "down_revision")
    return revision, downs, _strings(values.get(WAIVER_NAME), WAIVER_NAME), ast.get_docstring(module)


def _strings(value: object, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
        return tuple(str(v) for v in value)
    raise ValueError(f"{name} is neither None, a string nor a tuple of strings")


def find_heads(revisions: list[RevisionFile]) -> list[str]:
    revised = {down for r in revisions for down in r.down_revisions}
    return sorted(r.revision for r in revisions if r.revision and r.revision not in revised)


def check_files(revisions: list[RevisionFile], versions: Path) -> list[Finding]:
    findings: list[Finding] = []
    known = [r for r in revisions if r.revision]
    ids = {r.revision for r in known}
    free = next_free_number(revisions)
    for r in revisions:
        if not FILE_NAME.match(r.path.name):
            findings.append(
                Finding(
                    "malformed-file-name",
                    ERROR,
                    r.revision,
                    f"{r.path.name}: a revision file is named NNNN_description.py "
                    "(four digits, then a snake_case description)",
                    f"rename it (git mv) to the next free number: {_suggested_name(r, free)}, "
                    f'and set revision = "{free}"',
                )
            )
        elif r.revision is not None and r.revision != r.number:
            findings.append(
                Finding(
                    "revision-id-mismatch",
                    ERROR,
                    r.revision,
                    f"{r.path.name}: revision id {r.revision!r} differs from its file number {r.number!r}",
                    f'set revision = "{r.number}" in the file (and in any down_revision naming it)',
                )
            )
    for revision, paths in _duplicates((r.revision, r.path.name) for r in known).items():
        findings.append(
            Finding(
                "duplicate-revision",
                ERROR,
                revision,
                f"revision {revision} is defined by more than one file: {', '.join(paths)}",
                f"renumber the later file to the next free number, {free}, "
                "and point its down_revision at the other",
            )
        )
    for r in known:
        for down in r.down_revisions:
            if down not in ids:
                findings.append(
                    Finding(
                        "unknown-down-revision",
                        ERROR,
                        r.revision,
                        f"{r.path.name} revises {down}, but no file in alembic/versions defines {down}",
                        f"restore the file of revision {down} (git log --diff-filter=D -- alembic/versions) "
                        "or fix down_revision",
                    )
                )
            elif down.isdigit() and str(r.revision).isdigit() and int(down) >= int(str(r.revision)):
                findings.append(
                    Finding(
                        "down-revision-order",
                        ERROR,
                        r.revision,
                        f"{r.path.name} revises {down}, a later number: revisions must build in file order",
                        "renumber the files so each revision's number is above the one it revises",
                    )
                )
    numbers = sorted({int(r.number) for r in revisions if r.number})
    gaps = sorted(set(range(1, numbers[-1] + 1)) - set(numbers)) if numbers else []
    if gaps:
        missing = ", ".join(f"{n:04d}" for n in gaps)
        findings.append(
            Finding(
                "numbering-gap",
                WARNING,
                None,
                f"no revision file numbered {missing}: a deleted or renamed file?",
                "restore the file if it was ever applied anywhere; otherwise renumber the later files",
            )
        )
    stems = {r.path.stem for r in revisions}
    for sql in sorted(versions.glob("*.sql")):
        if sql.name.split(".")[0] not in stems:
            findings.append(
                Finding(
                    "orphan-sql-file",
                    WARNING,
                    None,
                    f"{sql.name} belongs to no revision (no {sql.name.split('.')[0]}.py beside it)",
                    "rename it with its revision's file stem, e.g. 0005_add_x.upgrade.sql, or delete it",
                )
            )
    return findings


def _duplicates(pairs: Iterable[tuple[str | None, str]]) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for key, name in pairs:
        if key is not None:
            seen.setdefault(key, []).append(name)
    return {key: names for key, names in seen.items() if len(names) > 1}


def check_heads(heads: list[str]) -> list[Finding]:
    if len(heads) <= 1:
        return []
    return [
        Finding(
            "multiple-heads",
            ERROR,
            None,
            f"{len(heads)} heads ({', '.join(heads)}): revisions branch from the same parent, "
            "so `alembic upgrade head` cannot choose",
            "renumber the later branch onto the other (set its down_revision to the other head and give it "
            "the next number), or join them with `alembic merge heads -m merge_branches --rev-id NNNN`",
        )
    ]


def next_free_number(revisions: list[RevisionFile]) -> str:
    """The four-digit id after every number a file or a revision id uses."""
    used = [int(r.number) for r in revisions if r.number]
    used += [int(r.revision) for r in revisions if r.revision and r.revision.isdigit()]
    return f"{max(used, default=0) + 1:04d}"


def _suggested_name(r: RevisionFile, free: str) -> str:
    """``ab85260f2871_add_user_preferences.py`` -> ``0005_add_user_preferences.py``."""
    from scripts.errors import ConfigError
    from scripts.migrations.revisions import validate_name

    slug = re.sub(r"^[0-9a-f]{12}_|^\d+_", "", r.path.stem).lower()
    try:
        return f"{free}_{validate_name(slug)}.py"
    except ConfigError:
        return f"{free}_<what_it_does>.py (snake_case, e.g. {free}_add_user_preferences.py)"


# The prose of alembic/script.py.mako's docstring that a new revision's author replaces. A revision
# that still carries it tells a reviewer nothing about its locks (tests check these are in the template).
TEMPLATE_PLACEHOLDERS: tuple[str, ...] = (
    "What it locks: describe the locks taken",
    "Runbook for production: how long, what it blocks, how to undo.",
)


def check_descriptions(revisions: list[RevisionFile]) -> list[Finding]:
    """Names that say what the revision does (the rule ``migration generate`` applies), and
    docstrings that no longer carry the template's placeholders."""
    from scripts.errors import ConfigError
    from scripts.migrations.revisions import NAME_HINT, validate_name

    findings: list[Finding] = []
    for r in revisions:
        named = FILE_NAME.match(r.path.name)
        if named and r.revision is not None:
            try:
                validate_name(named["slug"])
            except ConfigError as exc:
                findings.append(
                    Finding(
                        "vague-name",
                        WARNING,
                        r.revision,
                        f"{r.path.name}: {exc.message}",
                        f"{NAME_HINT}; if the revision is not applied anywhere yet, rename it, keeping its "
                        "number (git mv, its .sql files too); an applied one keeps its name, as its "
                        "checksum covers it",
                    )
                )
        placeholders = [p for p in TEMPLATE_PLACEHOLDERS if r.docstring and p in r.docstring]
        if placeholders:
            findings.append(
                Finding(
                    "placeholder-docstring",
                    ERROR,
                    r.revision,
                    f"{r.path.name}: the docstring still has the template's placeholder "
                    f"{placeholders[0]!r}: a reviewer cannot tell what the revision locks",
                    "replace it with what the revision locks and for how long (e.g. 'SHARE UPDATE EXCLUSIVE "
                    "on attempts while the index builds concurrently; reads and writes go on') and, if it is "
                    "risky in production, a short runbook: how long, what it blocks, how to undo",
                )
            )
    return findings
