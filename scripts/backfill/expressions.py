"""The operator's SET and WHERE texts, parsed by PostgreSQL's own parser before any SQL is built.

Each text is parsed in a wrapper statement that ends right after it (pglast, which is
libpg_query: the server's grammar and lexer as a library). The wrapper must parse as exactly
one statement whose tree is the wrapper's own except for the operator's part, so:

- SET is one assignment list (an UPDATE's target list) and nothing else: no WHERE, FROM or
  RETURNING after it, no second statement, no ``;``;
- WHERE is one boolean expression: parsed *without* the parentheses the batch puts around
  it, so ``false) OR (true`` (which would escape them) is a syntax error, and nothing may
  follow it (ORDER BY, UNION, a second statement);
- a parse that reaches the end of the text leaves no quote, dollar quote, comment or
  parenthesis open, so the text placed between newlines in the real statement cannot change
  how what follows it is read.

Nothing the operator typed is sent to the server before this check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pglast
from pglast import ast
from pglast.parser import ParseError

from scripts.backfill.plan import OFFLINE_DOLLAR_TAG
from scripts.errors import DataMigrationError

_TABLE = "_bf_t"
_SET_WRAPPER = f"UPDATE {_TABLE} SET\n"
_WHERE_WRAPPER = f"SELECT 1 FROM {_TABLE} WHERE\n"
SET_EXAMPLE = "difficulty = difficulty * 1.1"
WHERE_EXAMPLE = "difficulty < 2.0"


@dataclass(frozen=True)
class Expressions:
    """SET and WHERE as the operator wrote them (stripped), and the columns SET assigns."""

    set_: str
    where: str | None
    assigned: frozenset[str]


def _refuse(label: str, text: str, why: str, example: str) -> DataMigrationError:
    return DataMigrationError(
        f"{label} {text!r} is {why}",
        f"give {label} as {'one assignment list' if label == 'SET' else 'one boolean expression'},"
        f" e.g. {example!r}; nothing was changed",
    )


def _parse_one(label: str, text: str, wrapper: str, node: type, example: str) -> Any:
    try:
        statements = pglast.parse_sql(wrapper + text + "\n")
    except ParseError as exc:
        # the index refers to the wrapper, not to the operator's text: leave it out
        reason = " ".join(str(exc).split(", at index")[0].split())  # one line: it may quote a newline
        raise _refuse(label, text, f"not valid SQL here ({reason})", example) from None
    # stmt_len 0 means "to the end of the text": a trailing ';' ends the statement early
    if len(statements) != 1 or statements[0].stmt_len:
        raise _refuse(label, text, "more than one statement (it holds a ';')", example)
    stmt = statements[0].stmt
    if not isinstance(stmt, node):
        raise _refuse(label, text, "not one expression", example)
    return stmt


def _extra_clauses(stmt: Any, reference: Any, part: str) -> str:
    """The clauses of ``stmt`` that differ from the bare wrapper's, other than ``part``, as an
    operator names them ("" if none)."""
    differ = [n for n in stmt.__slots__ if n != part and getattr(stmt, n) != getattr(reference, n)]
    if "op" in differ:  # a set operation replaces the whole select: name only that
        differ = ["op"]
    names = dict.fromkeys(_CLAUSE_NAMES.get(n, n) for n in differ)
    return ", ".join(names)


def parse_set(set_: str) -> tuple[str, frozenset[str]]:
    """SET as one target list; returns it stripped and the columns it assigns (as stored:
    the parser folds unquoted names to lower case). ``col.field`` and ``col[i]`` assign col."""
    text = _check_text("SET", set_, SET_EXAMPLE)
    stmt = _parse_one("SET", text, _SET_WRAPPER, ast.UpdateStmt, SET_EXAMPLE)
    reference: Any = pglast.parse_sql(_SET_WRAPPER + "x = 1\n")[0].stmt
    extra = _extra_clauses(stmt, reference, "targetList")
    if extra:
        raise _refuse("SET", text, f"more than an assignment list (it holds {extra})", SET_EXAMPLE)
    return text, frozenset(target.name for target in stmt.targetList)


def parse_where(where: str | None) -> str | None:
    """WHERE as one expression, or None."""
    if where is None:
        return None
    text = _check_text("WHERE", where, WHERE_EXAMPLE)
    stmt = _parse_one("WHERE", text, _WHERE_WRAPPER, ast.SelectStmt, WHERE_EXAMPLE)
    reference: Any = pglast.parse_sql(_WHERE_WRAPPER + "true\n")[0].stmt
    extra = _extra_clauses(stmt, reference, "whereClause")
    if extra:
        raise _refuse("WHERE", text, f"more than one expression (it holds {extra})", WHERE_EXAMPLE)
    return text


def parse_expressions(set_: str, where: str | None) -> Expressions:
    text, assigned = parse_set(set_)
    return Expressions(set_=text, where=parse_where(where), assigned=assigned)


def check_key_not_assigned(assigned: frozenset[str], key: tuple[str, ...]) -> None:
    moved = sorted(assigned & set(key))
    if moved:
        raise DataMigrationError(
            f"SET assigns the key column {', '.join(moved)}:"
            " the walk by that key would meet the moved rows again",
            "walk by another unique key (--key), or change the key in a separate step",
        )


def _check_text(label: str, text: str, example: str) -> str:
    stripped = text.strip()
    if not stripped:
        raise DataMigrationError(f"{label} is empty", f"give {label} as an SQL expression, e.g. {example!r}")
    # the offline loop is a DO block quoted by this tag: the text must not close it, even
    # inside one of its own string literals
    if OFFLINE_DOLLAR_TAG in stripped:
        raise DataMigrationError(
            f"{label} holds {OFFLINE_DOLLAR_TAG}",
            "that tag quotes the offline loop: use another dollar tag; nothing was changed",
        )
    return stripped


# What the parser's field names mean to an operator.
_CLAUSE_NAMES = {
    "whereClause": "WHERE",
    "fromClause": "FROM",
    "returningList": "RETURNING",
    "returningClause": "RETURNING",
    "withClause": "WITH",
    "groupClause": "GROUP BY",
    "havingClause": "HAVING",
    "sortClause": "ORDER BY",
    "limitCount": "LIMIT",
    "limitOffset": "OFFSET",
    "limitOption": "LIMIT",
    "lockingClause": "FOR UPDATE/SHARE",
    "windowClause": "WINDOW",
    "op": "UNION/INTERSECT/EXCEPT",
    "targetList": "a select list",
    "relation": "another table",
}
