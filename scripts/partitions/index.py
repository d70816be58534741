"""The revision helper: an index on a partitioned table built without blocking writes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from scripts.db.sqltext import literal_text, quote_literal
from scripts.errors import ConfigError
from scripts.partitions.defaults import DEFAULT_TABLE

MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1
_COLUMN_SPEC = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_$]*)(?P<order>\s+(?:ASC|DESC))?(?P<nulls>\s+NULLS\s+(?:FIRST|LAST))?$",
    re.IGNORECASE,
)
_ACCESS_METHOD = re.compile(r"^[a-z_][a-z0-9_]*$")


def create_partitioned_index_concurrently(
    op: Any,
    name: str,
    columns: Sequence[str],
    *,
    table: str = DEFAULT_TABLE,
    unique: bool = False,
    using: str | None = None,
    where: str | None = None,
) -> None:
    """Build an index on a partitioned table without blocking writes, from a revision.

    PostgreSQL cannot CREATE INDEX CONCURRENTLY on a partitioned table (see "CREATE INDEX",
    Notes), so: the index ``ON ONLY`` the parent (created invalid, catalog only), then
    ``CREATE INDEX CONCURRENTLY`` on each partition, then ``ALTER INDEX ... ATTACH PARTITION``;
    the parent index turns valid once every partition has one attached. It all runs in an
    autocommit block: CONCURRENTLY cannot run in a transaction, and the ON ONLY statement's
    SHARE lock is released at once instead of being held to the end of the revision.

    One generator query names the per-partition statements. Online, its rows are executed; in
    offline (``--sql``) mode it is emitted followed by psql's ``\\gexec``, which executes the
    very same generated statements one by one at apply time — so a partition created between
    writing and applying the script is not missed. Partitions that already carry a matching
    attached index (created after the parent index) are skipped.

    ``columns``: names, each optionally followed by ASC/DESC and NULLS FIRST/LAST.
    ``where``: a predicate for a partial index, trusted SQL from the revision's author.
    Downgrade: ``op.drop_index(name)`` (drops the partitions' indexes with it).
    """
    ctx = op.get_context()
    dialect = ctx.dialect
    prep = dialect.identifier_preparer
    body = _index_body(prep, columns, using, where)
    kind = "UNIQUE INDEX" if unique else "INDEX"
    parent_name = prep.quote(name)
    schema, _, bare_table = table.rpartition(".")
    qualified_table = (prep.quote_schema(schema) + "." if schema else "") + prep.quote(bare_table)
    parent_index = (prep.quote_schema(schema) + "." if schema else "") + parent_name
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise ConfigError(f"index name {name!r} is longer than {MAX_IDENTIFIER_BYTES} bytes", "shorten it")
    # A child index is named like the parent with the table name replaced by the partition's:
    # ix_attempts_score on attempts_2025 -> ix_attempts_2025_score.
    prefix, found, suffix = name.partition(bare_table)
    if not found:
        prefix, suffix = "", "_" + name
    lit = quote_literal
    template_cic = f"CREATE {kind} CONCURRENTLY %I ON %I.%I {body.replace('%', '%%')}"
    generator = (
        "SELECT format(" + lit(template_cic) + ", child.index_name, child.nspname, child.relname),"
        " format('ALTER INDEX %s ATTACH PARTITION %I.%I', "
        + lit(parent_index)
        + ", child.nspname, child.index_name)"
        " FROM (SELECT n.nspname, c.relname, "
        + lit(prefix)
        + " || c.relname || "
        + lit(suffix)
        + " AS index_name"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE i.inhparent = CAST(" + lit(qualified_table) + " AS regclass) AND c.relkind = 'r'"
        " AND NOT EXISTS (SELECT 1 FROM pg_inherits ii JOIN pg_index x ON x.indexrelid = ii.inhrelid"
        " WHERE ii.inhparent = CAST(" + lit(parent_index) + " AS regclass) AND x.indrelid = c.oid)) AS child"
        " ORDER BY child.relname"
    )
    with ctx.autocommit_block():
        op.execute(literal_text(f"CREATE {kind} {parent_name} ON ONLY {qualified_table} {body}"))
        if ctx.as_sql:
            ctx.impl.static_output(generator + "\n\\gexec\n")
            return
        rows = op.get_bind().execute(literal_text(generator)).all()
        for create_child, attach_child in rows:
            op.execute(literal_text(create_child))
            op.execute(literal_text(attach_child))


def _index_body(prep: Any, columns: Sequence[str], using: str | None, where: str | None) -> str:
    if not columns:
        raise ConfigError("an index needs at least one column", "pass the column names")
    parts = []
    for spec in columns:
        match = _COLUMN_SPEC.match(spec.strip())
        if not match:
            raise ConfigError(
                f"index column {spec!r} is malformed",
                "write a column name, optionally ASC|DESC NULLS FIRST|LAST",
            )
        parts.append(
            prep.quote(match["name"]) + (match["order"] or "").upper() + (match["nulls"] or "").upper()
        )
    method = ""
    if using is not None:
        if not _ACCESS_METHOD.match(using):
            raise ConfigError(f"index method {using!r} is malformed", "use e.g. btree, brin, gin")
        method = f"USING {prep.quote(using)} "
    predicate = f" WHERE {where}" if where else ""
    return f"{method}({', '.join(parts)}){predicate}"
