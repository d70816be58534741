"""The operator's SET and WHERE texts: checked before any SQL is built from them."""

from __future__ import annotations

import re

from scripts.backfill.plan import OFFLINE_DOLLAR_TAG
from scripts.errors import DataMigrationError

_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


def check_expression(label: str, expr: str | None) -> str | None:
    """One SQL expression: not empty, no ``;`` outside quotes (one statement per batch)."""
    if expr is None:
        return None
    stripped = expr.strip()
    if not stripped:
        raise DataMigrationError(f"{label} is empty", f"give {label} as an SQL expression")
    if ";" in _QUOTED.sub("", stripped):
        raise DataMigrationError(
            f"{label} {stripped!r} holds a ';'",
            f"give {label} as one SQL expression, without a statement separator",
        )
    if OFFLINE_DOLLAR_TAG in stripped:
        raise DataMigrationError(f"{label} holds {OFFLINE_DOLLAR_TAG}", "that tag quotes the offline loop")
    return stripped


_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[(),=\[\]]|[^'\"(),=\[\]\s]+")


def assigned_columns(set_: str) -> set[str]:
    """The columns a SET list assigns (``a = 1, "B" = 2, (c, d) = (3, 4)``), names as stored."""
    targets: set[str] = set()
    parens = brackets = 0
    in_target = True
    for token in _TOKEN.findall(set_):
        if token in "()[]":
            parens += {"(": 1, ")": -1}.get(token, 0)
            brackets += {"[": 1, "]": -1}.get(token, 0)
        elif token == "=" and parens == 0 and brackets == 0:
            in_target = False
        elif token == "," and parens == 0 and brackets == 0:
            in_target = True
        elif in_target and token != "," and brackets == 0 and parens <= 1:
            name = token.split(".")[0]  # "col.field" assigns col
            targets.add(name[1:-1].replace('""', '"') if name.startswith('"') else name.lower())
    return targets


def check_key_not_assigned(set_: str, key: tuple[str, ...]) -> None:
    moved = sorted(assigned_columns(set_) & set(key))
    if moved:
        raise DataMigrationError(
            f"SET assigns the key column {', '.join(moved)}:"
            " the walk by that key would meet the moved rows again",
            "walk by another unique key (--key), or change the key in a separate step",
        )
