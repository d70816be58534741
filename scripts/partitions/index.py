"""The revision helper: an index on a partitioned table built without blocking writes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from scripts.db.engine import first_line
from scripts.db.sqltext import literal_text, quote_literal
from scripts.errors import ConfigError, MigrationFailed
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

    Idempotent, so a failed or interrupted run is finished by running the revision again: the
    parent is created ``IF NOT EXISTS``; a partition whose index is already attached is skipped;
    a valid index of the child's name is attached as it is; an invalid one (what a failed
    ``CREATE INDEX CONCURRENTLY`` leaves, "Building Indexes Concurrently") is dropped
    concurrently and built again. When a partition's build fails, its invalid index is dropped
    concurrently (it would slow every insert) and the error says what is kept and how to finish.

    One generator query names the per-partition statements. Online, its rows are executed; in
    offline (``--sql``) mode it is emitted followed by psql's ``\\gexec``, which executes the
    very same generated statements one by one at apply time (skipping NULL ones), so the
    script is idempotent in the same way and a partition created between writing and applying
    it is not missed.

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
    generator = _generator(kind, body, qualified_table, parent_index, prefix, suffix)
    statements = (
        "SELECT drop_invalid, create_child, attach_child FROM ("
        + generator
        + ") AS todo ORDER BY todo.index_name"
    )
    with ctx.autocommit_block():
        # squawk flags a CREATE INDEX without CONCURRENTLY as blocking writes; ON ONLY a
        # partitioned table it builds nothing (catalog only, "CREATE INDEX": ONLY), and its
        # SHARE lock ends with this autocommit statement.
        op.execute(
            literal_text(
                "-- squawk-ignore require-concurrent-index-creation\n"
                f"CREATE {kind} IF NOT EXISTS {parent_name} ON ONLY {qualified_table} {body}"
            )
        )
        if ctx.as_sql:
            # \gexec runs every column of every row as a statement: the name is left out
            ctx.impl.static_output(statements + "\n\\gexec\n")
            return
        bind = op.get_bind()
        rows = bind.execute(literal_text(generator)).all()
        for child, drop_invalid, create_child, attach_child in rows:
            for statement in (drop_invalid, create_child, attach_child):
                if statement is None:
                    continue
                try:
                    op.execute(literal_text(statement))
                except DBAPIError as exc:
                    raise _failed(bind, exc, statement, parent_index, child, schema) from exc


def _generator(kind: str, body: str, table: str, parent_index: str, prefix: str, suffix: str) -> str:
    """The query naming, per partition without an attached index, the statements that give it
    one: (index_name, drop_invalid: of an invalid leftover or NULL, create_child or NULL,
    attach_child), ordered by partition name."""
    lit = quote_literal
    template_cic = f"CREATE {kind} CONCURRENTLY %I ON %I.%I {body.replace('%', '%%')}"
    return (
        "SELECT child.index_name,"
        " CASE WHEN x.indexrelid IS NOT NULL AND NOT x.indisvalid"
        " THEN format('DROP INDEX CONCURRENTLY %I.%I', child.nspname, child.index_name) END AS drop_invalid,"
        " CASE WHEN x.indexrelid IS NULL OR NOT x.indisvalid THEN format("
        + lit(template_cic)
        + ", child.index_name, child.nspname, child.relname) END AS create_child,"
        " format('ALTER INDEX %s ATTACH PARTITION %I.%I', "
        + lit(parent_index)
        + ", child.nspname, child.index_name) AS attach_child"
        " FROM (SELECT n.nspname, c.oid AS relid, c.relnamespace, c.relname, "
        + lit(prefix)
        + " || c.relname || "
        + lit(suffix)
        + " AS index_name"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE i.inhparent = CAST(" + lit(table) + " AS regclass) AND c.relkind = 'r'"
        " AND NOT EXISTS (SELECT 1 FROM pg_inherits ii JOIN pg_index xx ON xx.indexrelid = ii.inhrelid"
        " WHERE ii.inhparent = CAST(" + lit(parent_index) + " AS regclass) AND xx.indrelid = c.oid)) AS child"
        " LEFT JOIN pg_class ic ON ic.relname = child.index_name AND ic.relnamespace = child.relnamespace"
        " AND ic.relkind = 'i'"
        " LEFT JOIN pg_index x ON x.indexrelid = ic.oid AND x.indrelid = child.relid"
        " ORDER BY child.relname"
    )


def _failed(
    bind: Any,
    exc: DBAPIError,
    statement: str,
    parent_index: str,
    child: str,
    schema: str,
) -> MigrationFailed:
    """Drop the invalid index a failed CREATE INDEX CONCURRENTLY left, then one line saying
    exactly what is kept and how to finish."""
    detail = first_line(exc, bind.engine.url)
    prep = bind.dialect.identifier_preparer
    qualified_child = (prep.quote_schema(schema) + "." if schema else "") + prep.quote(child)
    invalid = bind.execute(
        text(
            "SELECT NOT x.indisvalid FROM pg_index x WHERE x.indexrelid = to_regclass(:child)"
            " AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = x.indexrelid)"
        ),
        {"child": qualified_child},
    ).scalar()
    dropped = ""
    if invalid:
        bind.execute(literal_text(f"DROP INDEX CONCURRENTLY IF EXISTS {qualified_child}"))
        dropped = f"; dropped the invalid {child} it left"
    attached = list(
        bind.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = to_regclass(:parent) ORDER BY c.relname"
            ),
            {"parent": parent_index},
        ).scalars()
    )
    kept = f"{parent_index} (invalid until every partition has its index)"
    if attached:
        kept += f" and {', '.join(attached)} (valid, attached)"
    return MigrationFailed(
        f"partitioned index {parent_index}: {statement} failed: {detail}{dropped}",
        f"kept: {kept}; fix the cause and run the revision again, which keeps what is valid and"
        f" builds the rest; if you change the index definition, first DROP INDEX {parent_index}"
        " (drops its partitions' indexes too)",
    )


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
