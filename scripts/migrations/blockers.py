"""Which tables a failed statement was trying to lock, for a lock-timeout message.

The statement is parsed with PostgreSQL's own parser (pglast), never pattern-matched: every
relation the tree names (RangeVar: the target of DDL and DML, FROM and JOIN, REFERENCES,
PARTITION OF, the table of CREATE TRIGGER ...), except the WITH queries it defines itself.
"""

from __future__ import annotations

from typing import NamedTuple

from pglast import ast, parse_sql, visitors
from pglast.parser import ParseError
from sqlalchemy import text
from sqlalchemy.engine import Connection


class Relation(NamedTuple):
    schema: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


class _Relations(visitors.Visitor):
    def __init__(self) -> None:
        self.found: list[Relation] = []
        self.with_queries: set[str] = set()

    def visit_RangeVar(self, ancestors: object, node: ast.RangeVar) -> None:
        relation = Relation(node.schemaname, node.relname or "")
        if relation not in self.found:
            self.found.append(relation)

    def visit_CommonTableExpr(self, ancestors: object, node: ast.CommonTableExpr) -> None:
        if node.ctename:
            self.with_queries.add(node.ctename)


def tables_in_statement(statement: str) -> list[Relation]:
    """The relations ``statement`` names, each once, in the order of its parse tree; none when
    it does not parse (the message then says "a table")."""
    try:
        tree = parse_sql(statement)
    except ParseError:
        return []
    walker = _Relations()
    walker(tree)
    return [r for r in walker.found if r.schema is not None or r.name not in walker.with_queries]


def held_by_others(conn: Connection, relations: list[Relation]) -> list[Relation]:
    """Of ``relations``, those another backend holds a lock on right now (the likely blocker)."""
    if not relations:
        return []
    rows = set(
        conn.execute(
            text(
                "SELECT DISTINCT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()"
                " AND c.relname = ANY(:names)"
            ),
            {"names": [r.name for r in relations]},
        )
        .scalars()
        .all()
    )
    conn.rollback()
    return [r for r in relations if r.name in rows]
