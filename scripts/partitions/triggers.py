"""A new partition's triggers set up as on the partition before it (its template).

ATTACH PARTITION clones the parent's row triggers onto the new partition, enabled ("CREATE
TRIGGER": triggers on a partitioned table). It does not copy what revisions did to each
partition itself: a statement-level trigger created on every partition (an INSERT or COPY that
names a partition fires that partition's statement triggers only, not the parent's), or a clone
switched off there because such a trigger does its work once per statement (revision 0005).
pg_partman solves the same gap with a template table whose properties each new child copies;
here the template is the existing partition nearest before the new one (after it, or the
DEFAULT partition, when there is none before), so whatever a revision set up on every
partition carries on to the ones ``ensure`` creates, with no list of triggers to keep in sync.
"""

from __future__ import annotations

import pglast
from pglast import ast
from pglast.stream import RawStream
from sqlalchemy import text
from sqlalchemy.engine import Connection

from scripts.db.sqltext import TRIGGER_ENABLED_CLAUSE, literal_text
from scripts.partitions.catalog import PartitionedTable, quote_ident, quote_name
from scripts.partitions.period_math import Period


def template_partition(info: PartitionedTable, period: Period) -> str | None:
    """The partition whose triggers a new ``period`` copies: the nearest one before it, else
    the nearest after it, else the DEFAULT partition (None if the table has no partition)."""
    assert period.start is not None
    before = [p for p in info.partitions if p.start is not None and p.start < period.start]
    after = [p for p in info.partitions if p.start is not None and p.start > period.start]
    if before:
        return before[-1].name
    if after:
        return after[0].name
    return info.default_partition


def match_template(conn: Connection, info: PartitionedTable, period: Period) -> list[str]:
    """Give the just-attached ``period`` the template's own triggers and the template's
    enabled state for each cloned one; return the statements run (in the caller's
    transaction, which already holds ACCESS EXCLUSIVE on the new partition)."""
    template = template_partition(info, period)
    if template is None:
        return []
    source = quote_name(conn, info.schema, template)
    new = quote_name(conn, info.schema, period.name)
    names = {"source": source, "new": new}

    def set_enabled(trigger: str, enabled: str) -> str:
        return f"ALTER TABLE {new} {TRIGGER_ENABLED_CLAUSE[enabled]} TRIGGER {quote_ident(conn, trigger)}"

    statements: list[str] = []
    own = conn.execute(
        text(
            "SELECT t.tgname, pg_get_triggerdef(t.oid), t.tgenabled FROM pg_trigger t"
            " WHERE t.tgrelid = CAST(:source AS regclass) AND NOT t.tgisinternal AND t.tgparentid = 0"
            " AND NOT EXISTS (SELECT 1 FROM pg_trigger n WHERE n.tgrelid = CAST(:new AS regclass)"
            " AND n.tgname = t.tgname) ORDER BY t.tgname"
        ),
        names,
    ).all()
    for name, definition, enabled in own:
        statements.append(_on_table(definition, info.schema, period.name))
        if enabled != "O":
            statements.append(set_enabled(name, enabled))
    # clones of the same parent trigger whose enabled state differs from the template's
    cloned = conn.execute(
        text(
            "SELECT n.tgname, t.tgenabled FROM pg_trigger n JOIN pg_trigger t"
            " ON t.tgparentid = n.tgparentid AND t.tgrelid = CAST(:source AS regclass)"
            " WHERE n.tgrelid = CAST(:new AS regclass) AND n.tgparentid <> 0"
            " AND n.tgenabled <> t.tgenabled ORDER BY n.tgname"
        ),
        names,
    ).all()
    for name, enabled in cloned:
        statements.append(set_enabled(name, enabled))
    for statement in statements:
        conn.execute(literal_text(statement))
    return statements


def _on_table(definition: str, schema: str, table: str) -> str:
    """The server's CREATE TRIGGER text (pg_get_triggerdef) re-targeted at ``table``, by
    editing the parsed statement's relation, not its text."""
    (raw,) = pglast.parse_sql(definition)
    statement = raw.stmt
    assert isinstance(statement, ast.CreateTrigStmt)
    statement.relation = ast.RangeVar(schemaname=schema, relname=table, inh=True, relpersistence="p")
    return str(RawStream()(statement))
