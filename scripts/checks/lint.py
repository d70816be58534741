"""Lint revisions' SQL with squawk (https://squawk.dev), the PostgreSQL migration linter.

squawk knows which statements take which locks and which rewrite a table; we only decide
what it reads and which of its rules apply here. Its configuration is data below, each
exclusion with its reason, and is passed as command-line flags so that the same rules hold
wherever the project is checked out. A statement that is safe for a reason squawk cannot
see is waived in the SQL itself, next to the statement: ``-- squawk-ignore <rule>``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scripts.checks.files import RevisionFile
from scripts.checks.findings import ERROR, WARNING, Finding
from scripts.checks.rendered import render_all
from scripts.db.engine import first_line
from scripts.errors import LintUnavailable

# The oldest server the project supports is PostgreSQL 13: rules judge costs on it, e.g.
# ADD COLUMN with a constant DEFAULT has been metadata-only since PostgreSQL 11.
TARGET_PG_VERSION = "13.0"

# Rules that never apply in this project, whatever the revision.
EXCLUDED_RULES: dict[str, str] = {
    # The runtime sets both on the migration session before the first revision (online:
    # scripts.migrations.runtime.apply_timeouts; offline: the SET lines heading the script), so a
    # revision's SQL need not repeat them.
    "require-lock-timeout": "set per session by the migration runtime",
    "require-statement-timeout": "set per session by the migration runtime",
    "require-timeout-settings": "set per session by the migration runtime",
    # varchar(n) lengths mirror the models' String(n); raising a varchar limit later is
    # metadata-only (ALTER TABLE, "Notes": binary-coercible type changes need no rewrite).
    "prefer-text-field": "varchar(n) mirrors the models' String(n); widening needs no rewrite",
    # Identifiers are UUIDs; the integer columns are range-checked measures (scores, counts,
    # response times, durations) that a 64-bit type would not make safer.
    "prefer-bigint-over-int": "ids are UUIDs; int columns are range-checked measures",
    "prefer-bigint-over-smallint": "ids are UUIDs; smallint columns are range-checked measures",
    # country_code char(2) holds ISO 3166-1 alpha-2 codes: fixed width by definition.
    "ban-char-field": "char(2) is deliberate for ISO 3166-1 alpha-2 country codes",
}

# Rules about the cost of locking or rewriting a table that already holds rows.
EXISTING_ROWS_RULES: tuple[str, ...] = (
    "require-concurrent-index-creation",
    "constraint-missing-not-valid",
    "adding-foreign-key-constraint",
    "adding-required-field",
    "adding-not-nullable-field",
    "adding-field-with-default",
    "adding-serial-primary-key-field",
    "changing-column-type",
    "disallowed-unique-constraint",
)

# The initial schema: revisions that the first `alembic upgrade head` applies back to back
# on an empty database, so no table they touch holds a row yet (0002's docstring says why
# its plain CREATE INDEX is right). EXISTING_ROWS_RULES do not apply to them; every later
# revision runs against tables in use and gets the full rule set.
EMPTY_DATABASE_REVISIONS = frozenset({"0001", "0002", "0003", "0004"})

# Downgrades drop what their upgrade created; linting them would flag every DROP. A rollback
# is a deliberate, reviewed act (alp-db migration rollback asks first), so only the way up is linted.
UNLINTED_SQL_SUFFIXES = (".downgrade.sql",)

# Paths per squawk process: well under any command-line limit (ARG_MAX), few processes.
FILES_PER_PROCESS = 500

# squawk reports every unparseable token; the first one per unit is what a person needs.
SYNTAX_ERROR_RULE = "syntax-error"


@dataclass(frozen=True)
class LintUnit:
    """One piece of SQL to lint: a revision's .sql file, or its rendered offline SQL."""

    revision: str
    label: str  # what a person sees: the .sql file's name, or the module's for offline SQL
    path: Path
    # A revision's .sql file runs inside the revision's transaction (scripts.sqlfiles), so
    # squawk assumes one; rendered offline SQL carries its own BEGIN/COMMIT, autocommit
    # blocks included, and its line numbers mean nothing to a reader.
    rendered: bool = False
    waived: tuple[str, ...] = ()  # the revision's own squawk_ignore


@dataclass(frozen=True)
class Violation:
    unit: LintUnit
    line: int  # 1-based
    rule: str
    message: str
    help: str | None
    statement: str  # the source line squawk points at


def squawk_binary() -> Path:
    """squawk from this environment (the squawk-cli wheel's script), else from PATH."""
    beside_python = Path(sys.executable).parent / "squawk"
    if beside_python.is_file():
        return beside_python
    found = shutil.which("squawk")
    if found is None:
        raise LintUnavailable(
            "squawk, the SQL migration linter, is not installed",
            'run pip install -e ".[dev]" (it installs squawk-cli) or put squawk on PATH',
        )
    return Path(found)


def excluded_rules(unit: LintUnit) -> list[str]:
    rules = [*EXCLUDED_RULES, *unit.waived]
    if unit.revision in EMPTY_DATABASE_REVISIONS:
        rules += EXISTING_ROWS_RULES
    return rules


def squawk_argv(unit: LintUnit, squawk: Path) -> list[str]:
    argv = [
        str(squawk),
        "--reporter=json",
        f"--pg-version={TARGET_PG_VERSION}",
        f"--exclude={','.join(excluded_rules(unit))}",
    ]
    if not unit.rendered:
        argv.append("--assume-in-transaction")
    return [*argv, str(unit.path)]


def lint(units: list[LintUnit], *, cwd: Path) -> list[Violation]:
    """Run squawk over the units and collect violations.

    Units that take the same flags (their excluded rules depend on the revision) go to one
    squawk process, whose JSON names the file of each violation: a few processes for the
    whole tree rather than one per file. ``cwd`` is the project root, where squawk would
    also read a ``.squawk.toml`` if one is added.
    """
    if not units:
        return []
    squawk = squawk_binary()
    groups: dict[tuple[str, ...], list[LintUnit]] = {}
    for unit in units:
        groups.setdefault(tuple(squawk_argv(unit, squawk)[:-1]), []).append(unit)
    violations: list[Violation] = []
    for flags, members in groups.items():
        for start in range(0, len(members), FILES_PER_PROCESS):
            violations += _lint_group(list(flags), members[start : start + FILES_PER_PROCESS], cwd)
    order = {id(unit): n for n, unit in enumerate(units)}
    return sorted(violations, key=lambda v: (order[id(v.unit)], v.line))


def _lint_group(flags: list[str], units: list[LintUnit], cwd: Path) -> list[Violation]:
    result = subprocess.run(
        [*flags, *(str(u.path) for u in units)], capture_output=True, text=True, cwd=cwd, check=False
    )
    try:
        reported = json.loads(result.stdout) if result.stdout.strip() else []
    except json.JSONDecodeError:
        reported = None
    if result.returncode not in (0, 1) or reported is None or (result.returncode and not reported):
        detail = (result.stderr or result.stdout).strip().splitlines()
        what = units[0].label if len(units) == 1 else f"{len(units)} files ({units[0].label}, ...)"
        raise LintUnavailable(
            f"squawk could not lint {what}: {detail[0] if detail else 'no output'}",
            f"run {flags[0]} --reporter=json {units[0].path} to see why",
        )
    by_file: dict[str, list[dict[str, object]]] = {}
    for item in reported:
        by_file.setdefault(str(item.get("file")), []).append(item)
    violations: list[Violation] = []
    for unit in units:
        violations += _violations(unit, by_file.get(str(unit.path), []))
    return violations


def _violations(unit: LintUnit, reported: list[dict[str, object]]) -> list[Violation]:
    if not reported:
        return []
    lines = unit.path.read_text().splitlines()
    found: list[Violation] = []
    syntax_error_seen = False
    for item in reported:
        rule = str(item.get("rule_name"))
        if rule == SYNTAX_ERROR_RULE:
            if syntax_error_seen:
                continue
            syntax_error_seen = True
        line = int(str(item.get("line", 0))) + 1  # squawk's lines are 0-based
        help_text = item.get("help")
        found.append(
            Violation(
                unit=unit,
                line=line,
                rule=rule,
                message=str(item.get("message", "")),
                help=str(help_text) if help_text else None,
                statement=lines[line - 1].strip() if 0 < line <= len(lines) else "",
            )
        )
    return found


@dataclass
class LintOutcome:
    findings: list[Finding]
    linted: list[str]  # revisions whose SQL squawk read
    # applied revisions whose files match the checksum recorded when they were applied: they
    # were linted before they were applied and cannot have changed since, so are not re-read
    unchanged: list[str]


def lint_revisions(
    revisions: list[RevisionFile], *, alembic_can_load: bool, unchanged: frozenset[str] = frozenset()
) -> LintOutcome:
    """squawk over each revision's SQL files; Python-only revisions through their offline SQL,
    rendered for the whole range in one Alembic run (scripts.checks.rendered)."""
    from scripts.project import project_home

    findings: list[Finding] = []
    outcome = LintOutcome(findings, [], [])
    units: list[LintUnit] = []
    to_render: list[RevisionFile] = []
    for r in revisions:
        if r.revision is None:
            continue
        if r.revision in unchanged:
            outcome.unchanged.append(r.revision)
            continue
        sql_files = [p for p in r.sql_files if not p.name.endswith(UNLINTED_SQL_SUFFIXES)]
        if sql_files:
            units += [LintUnit(r.revision, p.name, p, waived=r.squawk_ignore) for p in sql_files]
            outcome.linted.append(r.revision)
        elif len(r.down_revisions) <= 1:  # a merge revision only joins branches: nothing to render
            to_render.append(r)
    with tempfile.TemporaryDirectory(prefix="alp-db-lint-") as tmp:
        if to_render and not alembic_can_load:
            findings += [_not_loadable(r) for r in to_render]
        elif to_render:
            rendered = render_all({str(r.revision) for r in to_render})
            for r in to_render:
                assert r.revision is not None
                if r.revision in rendered.failed:
                    findings.append(_render_failed(r, rendered.failed[r.revision]))
                    continue
                path = Path(tmp) / f"{r.path.stem}.offline.sql"
                path.write_text(rendered.sql.get(r.revision, "BEGIN;\n\nCOMMIT;\n"))
                label = f"{r.path.name} (offline SQL)"
                units.append(LintUnit(r.revision, label, path, rendered=True, waived=r.squawk_ignore))
                outcome.linted.append(r.revision)
        findings += [_lint_finding(v) for v in lint(units, cwd=project_home())]
    return outcome


def _not_loadable(r: RevisionFile) -> Finding:
    return Finding(
        "lint-skipped",
        WARNING,
        r.revision,
        f"{r.path.name} was not linted: Alembic cannot load the revisions while the errors above remain",
        "fix those errors, then run validate-migrations again",
    )


def _render_failed(r: RevisionFile, exc: BaseException) -> Finding:
    command = f"alembic upgrade {r.down_revisions[0] if r.down_revisions else 'base'}:{r.revision} --sql"
    detail = first_line(exc, None, default="")
    # DBAs review and apply the offline SQL, so a revision must render in offline mode
    return Finding(
        "offline-sql-failed",
        ERROR,
        r.revision,
        f"{r.path.name} cannot be rendered as offline SQL ({type(exc).__name__}: {detail}), "
        "so a DBA cannot review it and it was not linted",
        f"run `{command}` to see the error; a revision must not read the database in upgrade() "
        "(use op.execute with SQL, or the batched data-migration helper, which emits a SQL loop offline)",
    )


def _lint_finding(v: Violation) -> Finding:
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
    if v.rule == SYNTAX_ERROR_RULE:
        how_to_fix = "fix the SQL; squawk parses PostgreSQL's grammar and the server would reject it too"
    return Finding(
        f"lint:{v.rule}", ERROR, unit.revision, f"{where}: {v.message.rstrip('.')}{statement}", how_to_fix
    )
