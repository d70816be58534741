"""The validate-schema report: the shared Finding (scripts/findings.py), gathered in a SchemaReport."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from scripts.findings import Finding, Severity, errors, exit_code, warnings

__all__ = ["Finding", "SchemaReport", "Severity"]


@dataclass
class SchemaReport:
    """Every finding of one run, errors first, and what was compared."""

    database: str
    findings: list[Finding] = field(default_factory=list)
    tables_checked: int = 0
    schema: str = "public"
    ignored: tuple[str, ...] = ()  # aspects left out on request (--ignore privileges,owner)

    @property
    def drift(self) -> bool:
        return exit_code(self.findings) == 1

    @property
    def errors(self) -> list[Finding]:
        return errors(self.findings)

    @property
    def warnings(self) -> list[Finding]:
        return warnings(self.findings)

    def as_json(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "schema": self.schema,
            "drift": self.drift,
            "tables_checked": self.tables_checked,
            "ignored": list(self.ignored),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.as_json() for f in self.findings],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_json(), indent=2)
