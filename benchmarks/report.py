"""``python -m benchmarks.report``: benchmarks/results/latest.json as a Markdown table (for README)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.harness import verdict_word

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def figure(value: float, unit: str) -> str:
    if unit == "rows/s":
        return f"{value:,.0f} rows/s"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:.3f} s"


def markdown(data: dict) -> str:  # type: ignore[type-arg]
    machine = data["machine"]
    versions = data["versions"]
    lines = [
        f"Measured {data['date']} on {machine['cpus']} CPUs ({machine['platform']}),"
        f" Python {machine['python']}, PostgreSQL {versions['postgresql']},"
        f" SQLAlchemy {versions['sqlalchemy']}, Alembic {versions['alembic']}"
        f"{' (--quick)' if data['quick'] else ''}; medians of 5+ interleaved runs after a warm-up.",
        *(
            [
                "",
                "Re-measured alone (`python -m benchmarks --only ...`), not in the run above: "
                + ", ".join(data["partial"])
                + ".",
            ]
            if data.get("partial")
            else []
        ),
        "",
        "| benchmark | ours: median (min - max) | baseline: median | ratio | target | holds |",
        "|---|---|---|---|---|---|",
    ]
    for b in data["benchmarks"]:
        holds = "**no**" if b["holds"] is False else verdict_word(b["holds"])
        lines.append(
            f"| {b['name']} | {figure(b['ours']['median'], b['unit'])}"
            f" ({figure(b['ours']['min'], b['unit'])} - {figure(b['ours']['max'], b['unit'])})"
            f" | {figure(b['baseline']['median'], b['unit'])} ({b['baseline_name']})"
            f" | {b['ratio']:.3g} | {b['target']} | {holds} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    # python -m benchmarks.report [results.json]: latest.json by default
    print(markdown(json.loads((Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS).read_text())))
