"""Which tables a failed statement was trying to lock, for a lock-timeout message."""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.engine import Connection

# The relation after the keywords that take table locks in DDL and DML.
_RELATION_AFTER = re.compile(
    r"\b(?:ALTER\s+TABLE(?:\s+ONLY)?(?:\s+IF\s+EXISTS)?|LOCK(?:\s+TABLE)?(?:\s+ONLY)?|"
    r"DROP\s+TABLE(?:\s+IF\s+EXISTS)?|TRUNCATE(?:\s+TABLE)?|INSERT\s+INTO|UPDATE(?:\s+ONLY)?|"
    r"DELETE\s+FROM(?:\s+ONLY)?|REFERENCES|ON(?:\s+ONLY)?|FROM|JOIN|PARTITION\s+OF|"
    r"CREATE\s+TRIGGER\s+\w+\s+(?:BEFORE|AFTER)[\w\s,]+?\s+ON)\s+"
    r"((?:\"[^\"]+\"|[A-Za-z_][\w$]*)(?:\.(?:\"[^\"]+\"|[A-Za-z_][\w$]*))?)",
    re.IGNORECASE,
)
_NOT_RELATIONS = frozenset({"only", "select", "lateral", "conflict", "commit"})


def tables_in_statement(statement: str) -> list[str]:
    """Relation names in order of appearance, without duplicates."""
    seen: list[str] = []
    for match in _RELATION_AFTER.finditer(statement):
        name = match.group(1)
        if name.lower() not in _NOT_RELATIONS and name not in seen:
            seen.append(name)
    return seen


def held_by_others(conn: Connection, names: list[str]) -> list[str]:
    """Of ``names``, those another backend holds a lock on right now (the likely blocker)."""
    if not names:
        return []
    bare = [name.split(".")[-1].strip('"') for name in names]
    rows = (
        conn.execute(
            text(
                "SELECT DISTINCT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()"
                " AND c.relname = ANY(:names)"
            ),
            {"names": bare},
        )
        .scalars()
        .all()
    )
    conn.rollback()
    return [name for name in bare if name in rows]
