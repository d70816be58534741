"""Small helpers for SQL text the project writes itself (never for SQL a user typed)."""

from __future__ import annotations

from sqlalchemy import TextClause, text

# pg_trigger.tgenabled -> the ALTER TABLE clause that sets it ("ALTER TABLE", ENABLE TRIGGER)
TRIGGER_ENABLED_CLAUSE = {"O": "ENABLE", "D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}


def escape_colons(sql: str) -> str:
    """``text()`` reads ``:name`` as a bind parameter; DDL and casts (``::int``) have none."""
    return sql.replace(":", "\\:")


def literal_text(sql: str) -> TextClause:
    """``text()`` of SQL that binds no parameters (its colons are literal)."""
    return text(escape_colons(sql))


def quote_literal(value: str) -> str:
    """A SQL string literal, for offline SQL that cannot carry bound values.

    The dialect's literal processor doubles ``%`` for pyformat drivers, which would make the
    online and offline text differ; standard_conforming_strings is on since PostgreSQL 9.1.
    """
    return "'" + value.replace("'", "''") + "'"
