"""One finding shape for every report a person must act on (validate-schema, health,
validate-migrations): what was expected, what is there, and how to put it right.

The rule every report follows: exit 1 when there is at least one ``error`` finding;
``warning`` findings are printed and exit 0 (README, "Commands": exit codes).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import Enum

INDENT = "    "


class Severity(str, Enum):
    """An ``error`` fails the check (exit 1); a ``warning`` needs attention but exits 0."""

    ERROR = "error"
    WARNING = "warning"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Finding:
    """One thing a person must look at, in the golden-test shape EXPECTED / ACTUAL / HOW TO FIX.

    ``kind`` says what sort of thing it is (``index``, ``column type``, a check's code),
    ``object`` which one (``items.ix_items_active_difficulty``, a revision id).
    """

    kind: str
    object: str
    severity: Severity
    expected: str
    actual: str
    how_to_fix: str

    @property
    def is_error(self) -> bool:
        return self.severity == Severity.ERROR

    def as_json(self) -> dict[str, str]:
        data = asdict(self)
        data["severity"] = str(self.severity)
        return data


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.is_error]


def warnings(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if not f.is_error]


def exit_code(findings: Iterable[Finding]) -> int:
    """1 when any finding is an error, else 0 (warnings alone never fail a run)."""
    return 1 if any(f.is_error for f in findings) else 0


def render_finding(finding: Finding) -> str:
    """``ERROR: index items.ix_x`` then the three labelled, indented parts."""
    parts = [f"{finding.severity.value.upper()}: {finding.kind} {finding.object}"]
    for label, value in (
        ("EXPECTED", finding.expected),
        ("ACTUAL", finding.actual),
        ("HOW TO FIX", finding.how_to_fix),
    ):
        parts.append(f"  {label}:")
        parts.append(textwrap.indent(value, INDENT))
    return "\n".join(parts)
