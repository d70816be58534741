"""The readable report: each finding in the EXPECTED / ACTUAL / HOW TO FIX shape."""

from __future__ import annotations

from scripts.findings import render_finding
from scripts.schema_diff.findings import SchemaReport


def render_text(report: SchemaReport) -> str:
    """The whole report; the last line is the verdict CI logs show."""
    blocks = [render_finding(f) for f in report.findings]
    errors, warnings = len(report.errors), len(report.warnings)
    where = f"{report.database} (schema {report.schema})"
    if report.drift:
        verdict = f"DRIFT: {errors} difference(s), {warnings} warning(s) in {where}"
    else:
        verdict = (
            f"schema matches the models: {report.tables_checked} tables checked,"
            f" {warnings} warning(s) in {where}"
        )
    return "\n\n".join([*blocks, verdict])
