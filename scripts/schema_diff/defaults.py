"""Server defaults compared by value where the type makes two spellings equal.

``DEFAULT 0`` and ``DEFAULT 0.0`` on a double precision column store the same value, but
the server prints them as written (pg_get_expr keeps the literal and hides the implicit
cast). When the text differs and both sides are constants (literals and casts only, read
with pglast, PostgreSQL's own parser), the server says whether ``CAST(a AS type)`` and
``CAST(b AS type)`` are the same value. Anything that calls a function (``now()``,
``nextval(...)``) is compared by text: evaluating it could have side effects.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from scripts.db.sqltext import literal_text
from scripts.schema_diff.states import CatalogState

# Parse-tree nodes of a constant expression: literals, casts and the names in a cast's type.
CONSTANT_NODES = frozenset(
    {
        "RawStmt",
        "SelectStmt",
        "ResTarget",
        "A_Const",
        "TypeCast",
        "TypeName",
        "String",
        "Integer",
        "Float",
        "Boolean",
        "BitString",
    }
)

DefaultPair = tuple[str, str, str]  # (type, expected default, live default)


def is_constant(expression: str) -> bool:
    from pglast import parse_sql  # imported only when two defaults differ in text
    from pglast.parser import ParseError
    from pglast.visitors import Visitor

    class Nodes(Visitor):
        def __init__(self) -> None:
            self.names: set[str] = set()

        def visit(self, ancestors: object, node: object) -> None:
            self.names.add(type(node).__name__)

    try:
        tree = parse_sql(f"SELECT ({expression})")
    except ParseError:
        return False
    if len(tree) != 1:
        return False
    nodes = Nodes()
    nodes(tree)
    return nodes.names <= CONSTANT_NODES


def differing_constants(expected: CatalogState, live: CatalogState) -> set[DefaultPair]:
    pairs = set()
    for name, table in expected.tables.items():
        have_table = live.tables.get(name)
        if have_table is None:
            continue
        for column in table.columns.values():
            have = have_table.columns.get(column.name)
            if have is None or not column.default or not have.default or column.default == have.default:
                continue
            if column.type == have.type and is_constant(column.default) and is_constant(have.default):
                pairs.add((column.type, column.default, have.default))
    return pairs


def equal_defaults(conn: Connection, expected: CatalogState, live: CatalogState) -> frozenset[DefaultPair]:
    """The (type, expected, live) default pairs that are the same value of that type."""
    equal = set()
    for type_, want, have in sorted(differing_constants(expected, live)):
        # Both are constants the server printed (checked above), the type is format_type()'s.
        sql = f"SELECT CAST(({want}) AS {type_}) IS NOT DISTINCT FROM CAST(({have}) AS {type_})"
        try:
            with conn.begin_nested():
                same = conn.scalar(literal_text(sql))
        except DBAPIError:
            continue  # not comparable as values: left to the text comparison
        if same:
            equal.add((type_, want, have))
    return frozenset(equal)
