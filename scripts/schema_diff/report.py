"""The readable report: each finding in the EXPECTED / ACTUAL / HOW TO FIX shape."""

from __future__ import annotations

import textwrap

from scripts.schema_diff.findings import Finding, SchemaReport

INDENT = "    "


def render_finding(finding: Finding) -> str:
    head = f"{finding.severity.upper()}: {finding.kind} {finding.object}"
    parts = [head]
    for label, value in (
        ("EXPECTED", finding.expected),
        ("ACTUAL", finding.actual),
        ("HOW TO FIX", finding.how_to_fix),
    ):
        parts.append(f"  {label}:")
        parts.append(textwrap.indent(value, INDENT))
    return "\n".join(parts)


def render_text(report: SchemaReport) -> str:
    """The whole report; the last line is the verdict CI logs show."""
    blocks = [render_finding(f) for f in report.findings]
    errors, warnings = len(report.errors), len(report.warnings)
    if report.drift:
        verdict = f"DRIFT: {errors} difference(s), {warnings} warning(s) in {report.database}"
    else:
        verdict = (
            f"schema matches the models: {report.tables_checked} tables checked, "
            f"{warnings} warning(s) in {report.database}"
        )
    return "\n\n".join([*blocks, verdict])
