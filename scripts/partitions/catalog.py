"""What the catalog says about a RANGE-partitioned table: its key, columns and partitions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import text
from sqlalchemy.engine import Connection

from scripts.errors import NotPartitioned, UnknownTable
from scripts.partitions.period_math import BOUND_FORMATS, Period, parse_bound

# DETACH PARTITION ... CONCURRENTLY (and pg_inherits.inhdetachpending) appeared in PostgreSQL 14.
CONCURRENT_DETACH_MIN_VERSION = 140000


@dataclass(frozen=True)
class PartitionedTable:
    """What the catalog says about a RANGE-partitioned table and its partitions."""

    schema: str
    name: str
    key: str
    key_type: str
    columns: tuple[str, ...]
    partitions: tuple[Period, ...]  # the range partitions, by lower bound
    default_partition: str | None
    detach_pending: tuple[str, ...] = ()

    def bound_literal(self, value: datetime) -> str:
        return value.strftime(BOUND_FORMATS[self.key_type])


def quote_ident(conn: Connection, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote(name))


def quote_name(conn: Connection, schema: str, name: str) -> str:
    prep = conn.dialect.identifier_preparer
    return f"{prep.quote_schema(schema)}.{prep.quote(name)}"


def describe_table(conn: Connection, table: str) -> PartitionedTable:
    """Read the table's partitioning from the catalog; clear errors for anything else."""
    schema, _, bare = table.rpartition(".")
    row = conn.execute(
        text(
            "SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relname = :name AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
            " AND (CASE WHEN :schema = '' THEN pg_table_is_visible(c.oid) ELSE n.nspname = :schema END)"
        ),
        {"name": bare, "schema": schema},
    ).first()
    if row is None:
        raise UnknownTable(f"table {table!r} does not exist", "check the name (e.g. --table attempts)")
    oid, nspname, relname, relkind = row
    key = conn.execute(
        text(
            "SELECT p.partstrat, p.partnatts, a.attname, format_type(a.atttypid, a.atttypmod)"
            " FROM pg_partitioned_table p"
            " LEFT JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
            " WHERE p.partrelid = :oid"
        ),
        {"oid": oid},
    ).first()
    if relkind != "p" or key is None:
        raise NotPartitioned(
            f"table {relname!r} is not partitioned",
            "partitions are managed only for tables declared PARTITION BY RANGE (time column)",
        )
    strategy, natts, key_name, key_type = key
    if strategy != "r" or natts != 1 or key_name is None or key_type not in BOUND_FORMATS:
        raise NotPartitioned(
            f"table {relname!r} is not partitioned by RANGE on one date/timestamp column",
            "partitions are managed only for PARTITION BY RANGE (a date or timestamp column)",
        )
    columns = tuple(
        conn.execute(
            text(
                "SELECT attname FROM pg_attribute WHERE attrelid = :oid AND attnum > 0"
                " AND NOT attisdropped ORDER BY attnum"
            ),
            {"oid": oid},
        ).scalars()
    )
    pending_col = "i.inhdetachpending" if server_version(conn) >= CONCURRENT_DETACH_MIN_VERSION else "false"
    rows = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), "
            + pending_col
            + " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = :oid"
        ),
        {"oid": oid},
    ).all()
    ranges: list[Period] = []
    default: str | None = None
    pending: list[str] = []
    for name, bound, is_pending in rows:
        if is_pending:
            pending.append(name)
        if bound == "DEFAULT":
            default = name
            continue
        ranges.append(parse_bound(name, bound))
    ranges.sort(key=lambda p: (p.start is not None, p.start or datetime.min.replace(tzinfo=timezone.utc)))
    return PartitionedTable(
        nspname, relname, key_name, key_type, columns, tuple(ranges), default, tuple(pending)
    )


def server_version(conn: Connection) -> int:
    return int(conn.execute(text("SELECT current_setting('server_version_num')")).scalar_one())
