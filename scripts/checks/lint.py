"""Lint revisions' SQL with squawk (https://squawk.dev), the PostgreSQL migration linter.

squawk knows which statements take which locks and which rewrite a table; we only decide
what it reads and which of its rules apply here. Its configuration is data below, each
exclusion with its reason, and is passed as command-line flags so that the same rules hold
wherever the project is checked out. A statement that is safe for a reason squawk cannot
see is waived in the SQL itself, next to the statement: ``-- squawk-ignore <rule>``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scripts.checks.files import RevisionFile
from scripts.checks.findings import ERROR, WARNING, Finding
from scripts.db.engine import first_line
from scripts.errors import LintUnavailable
from scripts.migrations import history

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
# The statements that end a revision in Alembic's offline output: the alembic_version write.
_VERSION_WRITE = re.compile(r"^(?:UPDATE|INSERT INTO|DELETE FROM) alembic_version\b", re.MULTILINE)

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
    """Run squawk over each unit (its flags depend on the revision) and collect violations.

    ``cwd`` is the project root, where squawk would also read a ``.squawk.toml`` if one is added.
    """
    if not units:
        return []
    squawk = squawk_binary()
    violations: list[Violation] = []
    for unit in units:
        result = subprocess.run(
            squawk_argv(unit, squawk), capture_output=True, text=True, cwd=cwd, check=False
        )
        try:
            reported = json.loads(result.stdout) if result.stdout.strip() else []
        except json.JSONDecodeError:
            reported = None
        if result.returncode not in (0, 1) or reported is None or (result.returncode and not reported):
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise LintUnavailable(
                f"squawk could not lint {unit.label}: {detail[0] if detail else 'no output'}",
                f"run {squawk} --reporter=json {unit.path} to see why",
            )
        violations += _violations(unit, reported)
    return violations


def _violations(unit: LintUnit, reported: list[dict[str, object]]) -> list[Violation]:
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


def lint_revisions(revisions: list[RevisionFile], *, alembic_can_load: bool) -> list[Finding]:
    """squawk over each revision's SQL files; Python-only revisions through their offline SQL."""
    from scripts.project import project_home

    findings: list[Finding] = []
    with tempfile.TemporaryDirectory(prefix="alp-db-lint-") as tmp:
        units: list[LintUnit] = []
        for r in revisions:
            if r.revision is None:
                continue
            sql_files = [
                p for p in history.revision_files(r.path)[1:] if not p.name.endswith(UNLINTED_SQL_SUFFIXES)
            ]
            if sql_files:
                units += [LintUnit(r.revision, p.name, p, waived=r.squawk_ignore) for p in sql_files]
            elif len(r.down_revisions) <= 1:  # a merge revision only joins branches: nothing to render
                unit_or_finding = _rendered_unit(r, Path(tmp), alembic_can_load)
                if isinstance(unit_or_finding, Finding):
                    findings.append(unit_or_finding)
                else:
                    units.append(unit_or_finding)
        findings += [_lint_finding(v) for v in lint(units, cwd=project_home())]
    return findings


def _rendered_unit(r: RevisionFile, tmp: Path, alembic_can_load: bool) -> LintUnit | Finding:
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
    label = f"{r.path.name} (offline SQL)"
    return LintUnit(r.revision, label, path, rendered=True, waived=r.squawk_ignore)


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
