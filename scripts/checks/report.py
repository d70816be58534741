"""``validate-migrations``: are the revision files sound, and does the database agree with them?

Three kinds of check, each returning :class:`Finding` s:

- **files** — ``NNNN_description.py`` names with revision id ``NNNN``, no gaps, one head,
  every ``down_revision`` present, no stray SQL files. Read statically (``ast``), so a broken
  tree is reported rather than crashing Alembic's revision map (which raises on a missing
  ``down_revision``);
- **lint** — squawk over each revision's SQL (scripts.checks.lint) for statements that lock or
  rewrite tables in use;
- **history** — ``alembic_version`` against ``migration_history`` (written by
  scripts.migrations.runtime) and the files: applied revisions present and unchanged (checksum),
  history consistent and in order.

Without a database (``offline=True``, or none reachable) only files and lint are checked.
"""

from __future__ import annotations

import ast
import re
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from scripts.checks import lint as sqllint
from scripts.errors import DatabaseUnreachable, DevDatabaseError, PermissionDenied
from scripts.migrations import history

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

ERROR, WARNING = "error", "warning"

FILE_NAME = re.compile(r"^(?P<number>\d{4})_(?P<slug>[a-z0-9]+(?:_[a-z0-9]+)*)\.py$")
NUMBER_PREFIX = re.compile(r"^(?P<number>\d{4})(?!\d)")
# Python files in versions/ that are not revisions (Alembic skips the same ones).
NOT_REVISION_FILES = frozenset({"__init__.py"})
EDITOR_LOCK_PREFIX = ".#"
# Downgrades drop what their upgrade created; linting them would flag every DROP. A rollback
# is a deliberate, reviewed act (alp-db migration rollback asks first), so only the way up is linted.
UNLINTED_SQL_SUFFIXES = (".downgrade.sql",)
# The statements that end a revision in Alembic's offline output: the alembic_version write.
_VERSION_WRITE = re.compile(r"^(?:UPDATE|INSERT INTO|DELETE FROM) alembic_version\b", re.MULTILINE)
INSUFFICIENT_PRIVILEGE = "42501"
WAIVER_NAME = "squawk_ignore"  # module-level tuple of squawk rules a revision waives
# File findings after which Alembic cannot build its revision map, so cannot render offline SQL.
BREAKS_ALEMBIC = frozenset({"unreadable-revision", "duplicate-revision", "unknown-down-revision"})


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # ERROR fails the check (exit 1); WARNING is reported only
    revision: str | None
    message: str
    how_to_fix: str


@dataclass(frozen=True)
class RevisionFile:
    path: Path
    revision: str | None
    down_revisions: tuple[str, ...]
    number: str | None  # the file name's leading NNNN, if it has one
    # squawk rules the revision waives as a whole: ``squawk_ignore = ("rule",)`` in its module,
    # with a comment saying why (for .sql files, ``-- squawk-ignore rule`` above a statement).
    squawk_ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class HistoryEvent:
    id: int
    revision: str
    migration_name: str
    direction: str
    checksum: str | None
    success: bool
    applied_at: datetime


@dataclass(frozen=True)
class DatabaseState:
    versions: tuple[str, ...]  # the rows of alembic_version
    events: tuple[HistoryEvent, ...] | None  # migration_history in insertion order; None if absent


@dataclass
class ValidationReport:
    findings: list[Finding]
    checked: list[str]  # "files", "lint", "history"
    revisions: int
    heads: list[str]
    database: str | None = None  # the database checked, password hidden
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
    findings += check_files(revisions, versions) + check_heads(heads)
    loadable = not any(f.code in BREAKS_ALEMBIC for f in findings)
    findings += lint_revisions(revisions, alembic_can_load=loadable)
    checked = ["files", "lint"]
    database = None
    if not offline:
        from scripts.db.target import resolve_url
        from scripts.db.urls import redact

        try:
            url = resolve_url(database_url)
            state = read_database_state(url)
        except (DatabaseUnreachable, DevDatabaseError) as exc:
            findings.append(
                Finding(
                    "database-not-checked",
                    WARNING,
                    None,
                    f"history not checked, only the files: {exc.message}",
                    exc.hint or "pass --database-url, or --offline to check only the files",
                )
            )
        else:
            findings += check_history(revisions, state)
            checked.append("history")
            database = redact(url)
    return ValidationReport(
        findings=findings,
        checked=checked,
        revisions=sum(1 for r in revisions if r.revision),
        heads=heads,
        database=database,
    )


# -- files ---------------------------------------------------------------------------------


def scan_versions(versions: Path) -> tuple[list[RevisionFile], list[Finding]]:
    """Every revision module in ``versions`` with its ids, read without importing it."""
    revisions: list[RevisionFile] = []
    findings: list[Finding] = []
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
        revision, downs, waived = ids
        revisions.append(RevisionFile(path, revision, downs, number, waived))
    return revisions, findings


def _module_ids(path: Path) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """revision, down_revisions and squawk_ignore of a revision module, read statically."""
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text(), filename=path.name).body:
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
    return revision, downs, _strings(values.get(WAIVER_NAME), WAIVER_NAME)


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
    for r in revisions:
        if not FILE_NAME.match(r.path.name):
            findings.append(
                Finding(
                    "malformed-file-name",
                    ERROR,
                    r.revision,
                    f"{r.path.name}: a revision file is named NNNN_description.py "
                    "(four digits, then a snake_case description)",
                    "rename it (git mv) to the next free number, e.g. "
                    "0005_add_user_preferences.py, and set revision to that number",
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
                "renumber the later file to the next free number and point its down_revision at the other",
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


# -- lint ----------------------------------------------------------------------------------


def lint_revisions(revisions: list[RevisionFile], *, alembic_can_load: bool) -> list[Finding]:
    """squawk over each revision's SQL files; Python-only revisions through their offline SQL."""
    from scripts.project import project_home

    findings: list[Finding] = []
    with tempfile.TemporaryDirectory(prefix="alp-db-lint-") as tmp:
        units: list[sqllint.LintUnit] = []
        for r in revisions:
            if r.revision is None:
                continue
            sql_files = [
                p for p in history.revision_files(r.path)[1:] if not p.name.endswith(UNLINTED_SQL_SUFFIXES)
            ]
            if sql_files:
                units += [sqllint.LintUnit(r.revision, p.name, p, waived=r.squawk_ignore) for p in sql_files]
            elif len(r.down_revisions) <= 1:  # a merge revision only joins branches: nothing to render
                unit_or_finding = _rendered_unit(r, Path(tmp), alembic_can_load)
                if isinstance(unit_or_finding, Finding):
                    findings.append(unit_or_finding)
                else:
                    units.append(unit_or_finding)
        findings += [_lint_finding(v) for v in sqllint.lint(units, cwd=project_home())]
    return findings


def _rendered_unit(r: RevisionFile, tmp: Path, alembic_can_load: bool) -> sqllint.LintUnit | Finding:
    assert r.revision is not None
    command = f"alembic upgrade {r.down_revisions[0] if r.down_revisions else 'base'}:{r.revision} --sql"
    if not alembic_can_load:
        return Finding(
            "lint-skipped",
            WARNING,
            r.revision,
            f"{r.path.name} was not linted: Alembic cannot load the revisions while the errors above remain",
            "fix those errors, then run validate-migrations again",
        )
    path = tmp / f"{r.path.stem}.offline.sql"
    try:
        path.write_text(offline_sql(r.revision, r.down_revisions[0] if r.down_revisions else None))
    except Exception as exc:  # revision code is the user's: whatever it raises is the finding
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        # DBAs review and apply the offline SQL, so a revision must render in offline mode
        return Finding(
            "offline-sql-failed",
            ERROR,
            r.revision,
            f"{r.path.name} cannot be rendered as offline SQL ({type(exc).__name__}: {first_line}), "
            "so a DBA cannot review it and it was not linted",
            f"run `{command}` to see the error; a revision must not read the database in upgrade() "
            "(use op.execute with SQL, or the batched data-migration helper, which emits a SQL loop offline)",
        )
    label = f"{r.path.name} (offline SQL)"
    return sqllint.LintUnit(r.revision, label, path, rendered=True, waived=r.squawk_ignore)


def _lint_finding(v: sqllint.Violation) -> Finding:
    unit = v.unit
    where = unit.label if unit.rendered else f"{unit.label}:{v.line}"
    statement = f": {v.statement}" if v.statement else ""
    advice = f"{v.help.rstrip('.')}. " if v.help else ""
    waiver = (
        f'squawk_ignore = ("{v.rule}",) to the revision module'
        if unit.rendered
        else f"`-- squawk-ignore {v.rule}` on the line above the statement"
    )
    how_to_fix = f"{advice}If it is safe here (a new or small table), say why in a comment and add {waiver}"
    if v.rule == sqllint.SYNTAX_ERROR_RULE:
        how_to_fix = "fix the SQL; squawk parses PostgreSQL's grammar and the server would reject it too"
    return Finding(
        f"lint:{v.rule}", ERROR, unit.revision, f"{where}: {v.message.rstrip('.')}{statement}", how_to_fix
    )


def offline_sql(revision: str, down_revision: str | None) -> str:
    """The statements of one revision in Alembic's offline SQL, wrapped in its transaction.

    The runtime's preamble (timeouts, migration_history DDL) and the alembic_version and
    history writes are left out: they are ours, not the revision's.
    """
    import io

    from alembic import command

    from scripts.migrations import api as migrations

    buffer = io.StringIO()
    config = migrations.alembic_config(None, stdout=buffer)
    config.output_buffer = buffer
    config.attributes["configure_logger"] = False  # keep Alembic's INFO lines off stderr
    command.upgrade(config, f"{down_revision}:{revision}" if down_revision else revision, sql=True)
    rendered = buffer.getvalue()
    marker = re.search(rf"^-- Running upgrade .*-> {re.escape(revision)}\s*$", rendered, re.MULTILINE)
    start = marker.end() if marker else 0
    end = _VERSION_WRITE.search(rendered, start)
    body = rendered[start : end.start() if end else len(rendered)].strip()
    # Alembic opened the revision's transaction before the marker and commits after the
    # version write; an autocommit block shows inside as COMMIT; ...; BEGIN;
    return f"BEGIN;\n\n{body}\n\nCOMMIT;\n"


# -- history -------------------------------------------------------------------------------


def read_database_state(url: URL) -> DatabaseState:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import inspect, select
    from sqlalchemy.exc import DBAPIError

    from scripts.db.engine import connect, make_engine

    engine = make_engine(url)
    try:
        with connect(engine) as conn:
            try:
                versions = tuple(MigrationContext.configure(conn).get_current_heads())
                events: tuple[HistoryEvent, ...] | None = None
                if inspect(conn).has_table(history.HISTORY_TABLE.name):
                    table = history.HISTORY_TABLE
                    rows = conn.execute(
                        select(
                            table.c.id,
                            table.c.revision,
                            table.c.migration_name,
                            table.c.direction,
                            table.c.checksum,
                            table.c.success,
                            table.c.applied_at,
                        ).order_by(table.c.id)
                    )
                    events = tuple(HistoryEvent(*row) for row in rows)
            except DBAPIError as exc:
                if getattr(exc.orig, "pgcode", None) == INSUFFICIENT_PRIVILEGE:
                    raise PermissionDenied(
                        f"cannot read alembic_version / migration_history as {url.username!r}",
                        "GRANT SELECT on both tables to this role, or use --offline",
                    ) from None
                raise
    finally:
        engine.dispose()
    return DatabaseState(versions=versions, events=events)


def check_history(revisions: list[RevisionFile], state: DatabaseState) -> list[Finding]:
    files = {r.revision: r for r in revisions if r.revision}
    last_success: dict[str, HistoryEvent] = {}
    last_upgrade: dict[str, HistoryEvent] = {}
    for row in state.events or ():
        if row.success:
            last_success[row.revision] = row
            if row.direction == "upgrade":
                last_upgrade[row.revision] = row

    applied, missing, complete = _applied(state.versions, files)
    missing |= {rev for rev, e in last_success.items() if e.direction == "upgrade" and rev not in files}
    findings = [_missing_file(rev, last_upgrade.get(rev)) for rev in sorted(missing)]
    if state.events is None:
        if state.versions:
            findings.append(_history_table_missing(state.versions))
        return findings
    for rev in sorted(applied):
        r, event, upgrade = files[rev], last_success.get(rev), last_upgrade.get(rev)
        if event is None:
            findings.append(_applied_without_history(rev))
        elif event.direction == "downgrade":
            findings.append(_says_downgraded(rev, event))
        if upgrade is not None and upgrade.checksum and upgrade.checksum != history.checksum(r.path):
            findings.append(_checksum_mismatch(r, upgrade))
        for down in r.down_revisions:
            earlier = last_upgrade.get(down)
            if upgrade is not None and earlier is not None and down in applied and upgrade.id < earlier.id:
                findings.append(_out_of_order(rev, upgrade, down, earlier))
    if complete:  # otherwise the revisions before a missing link are not known to be applied
        findings += [
            _says_applied(rev, last)
            for rev, last in sorted(last_success.items())
            if last.direction == "upgrade" and rev in files and rev not in applied
        ]
    return findings


def _applied(versions: tuple[str, ...], files: dict[str, RevisionFile]) -> tuple[set[str], set[str], bool]:
    """Revisions applied per alembic_version (its rows and their ancestors), those without a
    file, and whether the walk was complete (no missing link cut it short)."""
    applied: set[str] = set()
    missing: set[str] = set()
    stack = list(versions)
    while stack:
        rev = stack.pop()
        if rev in applied or rev in missing:
            continue
        if rev not in files:
            missing.add(rev)
            continue
        applied.add(rev)
        stack += files[rev].down_revisions
    return applied, missing, not missing


def _when(event: HistoryEvent) -> str:
    return f"history id {event.id}, {event.applied_at:%Y-%m-%d %H:%M:%S %Z}".rstrip()


_FIND_THE_TRUTH = "find out which is true (alp-db validate-schema), then migrate or `alembic stamp`"


def _missing_file(rev: str, upgrade: HistoryEvent | None) -> Finding:
    file_name = f"{upgrade.migration_name}.py" if upgrade else f"the file of revision {rev}"
    return Finding(
        "missing-file",
        ERROR,
        rev,
        f"revision {rev} is applied to the database, but {file_name} is missing from alembic/versions",
        "restore it (git log --diff-filter=D --name-only -- alembic/versions): "
        "an applied revision is never deleted",
    )


def _history_table_missing(versions: tuple[str, ...]) -> Finding:
    return Finding(
        "history-table-missing",
        ERROR,
        None,
        f"alembic_version is at {', '.join(versions)} but there is no migration_history table: "
        "the database was migrated without the alp-db runtime",
        "check the schema with alp-db validate-schema; from now on migrate through alembic/env.py "
        "(alp-db migrate or alembic upgrade)",
    )


def _applied_without_history(rev: str) -> Finding:
    return Finding(
        "applied-without-history",
        ERROR,
        rev,
        f"alembic_version says revision {rev} is applied, but migration_history has no successful "
        "upgrade of it (stamped, or applied outside the runtime?)",
        "check the schema with alp-db validate-schema; from now on migrate only through alembic/env.py",
    )


def _says_downgraded(rev: str, event: HistoryEvent) -> Finding:
    return Finding(
        "history-says-downgraded",
        ERROR,
        rev,
        f"alembic_version says revision {rev} is applied, but its last successful event in "
        f"migration_history is a downgrade ({_when(event)})",
        _FIND_THE_TRUTH,
    )


def _says_applied(rev: str, event: HistoryEvent) -> Finding:
    return Finding(
        "history-says-applied",
        ERROR,
        rev,
        f"migration_history's last successful event for revision {rev} is an upgrade "
        f"({_when(event)}), but alembic_version does not include it",
        _FIND_THE_TRUTH,
    )


def _checksum_mismatch(r: RevisionFile, upgrade: HistoryEvent) -> Finding:
    names = " / ".join(p.name for p in history.revision_files(r.path))
    return Finding(
        "checksum-mismatch",
        ERROR,
        r.revision,
        f"revision {r.revision} was edited after it was applied ({_when(upgrade)}): "
        f"{names} no longer match(es) the checksum recorded then",
        "restore the applied version (git log -p -- alembic/versions) and put the change in a new "
        "revision (alp-db migration generate); if the edit changes no SQL (a comment), record it: "
        f"UPDATE migration_history SET checksum = '{history.checksum(r.path)}' WHERE id = {upgrade.id}",
    )


def _out_of_order(rev: str, upgrade: HistoryEvent, down: str, earlier: HistoryEvent) -> Finding:
    return Finding(
        "history-out-of-order",
        ERROR,
        rev,
        f"migration_history shows revision {rev} applied ({_when(upgrade)}) before the revision it "
        f"builds on, {down} ({_when(earlier)})",
        "the history was edited or written by hand; check the schema with alp-db validate-schema",
    )
