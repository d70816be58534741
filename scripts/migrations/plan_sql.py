"""What a migration statement is, read with PostgreSQL's own parser (pglast, libpg_query).

Statements in an autocommit block (``CREATE INDEX CONCURRENTLY`` and kin) commit before the
probe can look at pg_locks, so their lock is the one the documentation gives for them
(SQL Commands, each statement's "Notes"/"CONCURRENTLY"): SHARE UPDATE EXCLUSIVE on the table,
taken for the whole build, in two or more transactions of their own.
"""

from __future__ import annotations

from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ObjectType
from pglast.parser import ParseError

SHARE_UPDATE_EXCLUSIVE = "ShareUpdateExclusiveLock"
# Statements that read or set session state: the runtime's own, never a schema change.
_READ_OR_SETTING = (ast.SelectStmt, ast.VariableSetStmt, ast.VariableShowStmt, ast.TransactionStmt)


def _statements(sql: str) -> list[ast.Node] | None:
    try:
        return [raw.stmt for raw in parse_sql(sql) if raw.stmt is not None]
    except ParseError:
        return None


def is_read_or_setting(sql: str) -> bool:
    statements = _statements(sql)
    return bool(statements) and all(isinstance(s, _READ_OR_SETTING) for s in statements or ())


def _range_name(rv: ast.RangeVar | None) -> str:
    if rv is None:
        return "?"
    return f"{rv.schemaname}.{rv.relname}" if rv.schemaname else str(rv.relname)


def autocommit_locks(sql: str) -> list[tuple[str, str]]:
    """(relation, pg_locks mode) a CONCURRENTLY statement holds while it runs."""
    found: list[tuple[str, str]] = []
    for stmt in _statements(sql) or []:
        if isinstance(stmt, ast.IndexStmt) and stmt.concurrent:
            found.append((_range_name(stmt.relation), SHARE_UPDATE_EXCLUSIVE))
        elif (
            isinstance(stmt, ast.DropStmt) and stmt.concurrent and stmt.removeType == ObjectType.OBJECT_INDEX
        ):
            for names in stmt.objects or ():
                found.append((".".join(n.sval for n in names) + " (its table)", SHARE_UPDATE_EXCLUSIVE))
        elif isinstance(stmt, ast.ReindexStmt) and any(
            p.defname == "concurrently" for p in stmt.params or ()
        ):
            if stmt.relation is not None:
                found.append((_range_name(stmt.relation), SHARE_UPDATE_EXCLUSIVE))
        elif isinstance(stmt, ast.AlterTableStmt):
            for cmd in stmt.cmds or ():
                if cmd.subtype == AlterTableType.AT_DetachPartition and getattr(
                    cmd.def_, "concurrent", False
                ):
                    found.append((_range_name(stmt.relation), SHARE_UPDATE_EXCLUSIVE))
                    found.append((_range_name(cmd.def_.name), SHARE_UPDATE_EXCLUSIVE))
    return found
