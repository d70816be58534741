"""The one shape every validate-migrations check reports in."""

from __future__ import annotations

from dataclasses import dataclass

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # ERROR fails the check (exit 1); WARNING is reported only
    revision: str | None
    message: str
    how_to_fix: str
