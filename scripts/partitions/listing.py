"""``partitions list`` (bounds, estimated rows, size, the default partition's rows) and the
validator's question: which current or next period has no partition."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from scripts.partitions.catalog import describe_table, quote_name
from scripts.partitions.defaults import DEFAULT_TABLE
from scripts.partitions.ensure_plan import infer_interval
from scripts.partitions.period_math import (
    Period,
    advance,
    as_utc,
    check_interval,
    covered,
    period_start,
    periods,
    show,
    show_short,
    today_utc,
)
from scripts.partitions.steps import pinned_session, transaction


@dataclass(frozen=True)
class PartitionRow:
    name: str
    start: datetime | None
    end: datetime | None
    is_default: bool
    estimated_rows: int | None  # None: never analysed
    size_bytes: int
    size: str

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "from": "DEFAULT" if self.is_default else show(self.start, "MINVALUE"),
            "to": "" if self.is_default else show(self.end, "MAXVALUE"),
            "estimated_rows": self.estimated_rows,
            "size_bytes": self.size_bytes,
            "size": self.size,
        }

    def as_row(self) -> dict[str, Any]:
        """For a table people read: UTC midnights as plain dates."""
        row = self.as_json()
        if not self.is_default:
            row["from"], row["to"] = show_short(self.start, "MINVALUE"), show_short(self.end, "MAXVALUE")
        return row


@dataclass
class PartitionListing:
    table: str
    partitions: list[PartitionRow]
    default_partition: str | None
    default_rows: int | None  # exact count: any row there means a missing partition
    default_earliest: datetime | None = None
    default_latest: datetime | None = None

    @property
    def warning(self) -> str | None:
        if not self.default_rows:
            return None
        return (
            f"{self.default_rows} row(s) in default partition {self.default_partition}"
            f" ({show(self.default_earliest, '?')} .. {show(self.default_latest, '?')}): a partition is"
            f" missing; run `alp-db partitions ensure --table {self.table}"
            f" --start {self.default_earliest:%Y-%m-%d}`"
            if self.default_earliest
            else f"{self.default_rows} row(s) in default partition {self.default_partition}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "partitions": [p.as_json() for p in self.partitions],
            "default_partition": self.default_partition,
            "default_rows": self.default_rows,
            "warning": self.warning,
        }


def list_partitions(conn: Connection, table: str = DEFAULT_TABLE) -> PartitionListing:
    with transaction(conn), pinned_session(conn, None):
        info = describe_table(conn, table)
        stats = {
            name: (tuples, size, pretty)
            for name, tuples, size, pretty in conn.execute(
                text(
                    "SELECT c.relname, c.reltuples, pg_total_relation_size(c.oid),"
                    " pg_size_pretty(pg_total_relation_size(c.oid))"
                    " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = CAST(:rel AS regclass)"
                ),
                {"rel": quote_name(conn, info.schema, info.name)},
            )
        }

        def row(name: str, start: datetime | None, end: datetime | None, is_default: bool) -> PartitionRow:
            tuples, size, pretty = stats[name]
            # reltuples is -1 on PostgreSQL 14+ (0 before) until the first VACUUM/ANALYZE
            estimated = None if tuples is None or tuples < 0 else round(tuples)
            return PartitionRow(name, start, end, is_default, estimated, int(size), str(pretty))

        rows = [row(p.name, p.start, p.end, False) for p in info.partitions]
        listing = PartitionListing(info.name, rows, info.default_partition, None)
        if info.default_partition:
            rows.append(row(info.default_partition, None, None, True))
            key = conn.dialect.identifier_preparer.quote(info.key)
            count, lo, hi = conn.execute(
                text(
                    f"SELECT count(*), min({key}), max({key})"
                    f" FROM ONLY {quote_name(conn, info.schema, info.default_partition)}"
                )
            ).one()
            listing.default_rows = int(count)
            listing.default_earliest, listing.default_latest = as_utc(lo), as_utc(hi)
        return listing


def missing_partitions(
    conn: Connection, table: str = DEFAULT_TABLE, interval: str | None = None, at: date | None = None
) -> list[Period]:
    """The current and next period (at ``at``, default today) not wholly covered by partitions.

    A row of such a period would land in the DEFAULT partition (or fail without one). Coverage
    counts any range partitions, so a month inside an existing yearly partition is covered.
    """
    day = at or today_utc()
    with transaction(conn), pinned_session(conn, None):
        info = describe_table(conn, table)
    chosen = check_interval(interval) if interval else infer_interval(info)
    current = period_start(day, chosen)
    wanted = periods(info.name, current.date(), advance(current, chosen).date(), chosen)
    return [p for p in wanted if not covered(p, info.partitions)]
