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
from dataclasses import dataclass
from pathlib import Path

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
