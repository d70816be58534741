"""What the validator reports: one Finding per difference, gathered in a SchemaReport."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One difference between the models (or the revisions) and the live database.

    ``kind`` is the object type (``table``, ``column``, ``index``, ``check``...), ``object``
    its name qualified by its table (``items.ix_items_active_difficulty``). An ``error`` is
    drift; a ``warning`` needs attention but does not fail CI.
    """

    kind: str
    object: str
    severity: Severity
    expected: str
    actual: str
    how_to_fix: str

    def as_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class SchemaReport:
    """Every finding of one run, errors first, and what was compared."""

    database: str
    findings: list[Finding] = field(default_factory=list)
    tables_checked: int = 0

    @property
    def drift(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def as_json(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "drift": self.drift,
            "tables_checked": self.tables_checked,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.as_json() for f in self.findings],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_json(), indent=2)
