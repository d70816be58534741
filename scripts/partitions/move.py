"""The steps that turn one period into a partition without holding the platform's writers.

Each function here is one short transaction of :func:`scripts.partitions.ensure_run.ensure`
(a savepoint when the caller is already in a transaction), run with a short ``lock_timeout``
and retried by ``steps.run_step``. In order, with the locks each takes ("Explicit Locking",
"ALTER TABLE" and "CREATE TABLE" in the PostgreSQL docs):

1. :func:`create_table` — ``CREATE TABLE new (LIKE parent ...)`` with the parent's defaults,
   CHECK/NOT NULL constraints and indexes, plus the CHECK that proves the new bounds
   (``BOUNDS_CHECK``). ACCESS SHARE on the parent (LIKE reads its definition); writers go on.
2. :func:`move_batch`, repeated — up to ``batch_rows`` rows of the range leave the DEFAULT
   partition for the new table, in one statement, verified by count and md5. SHARE ROW
   EXCLUSIVE on the DEFAULT partition only (to switch its user triggers off for the move):
   inserts that land in the default wait for one batch; the parent and every other partition
   are untouched, so current writes go on.
   Then the DEFAULT partition is vacuumed (``ensure_run._Run.vacuum``, SHARE UPDATE
   EXCLUSIVE: no reader or writer waits), so that step 4's scans of it read only live rows,
   not the pages the moved rows left dead.
3. :func:`add_foreign_keys` — the parent's foreign keys on the new table ``NOT VALID``:
   SHARE ROW EXCLUSIVE on the new table and on each referenced table (users, items, ...)
   for a catalog-only change; then :func:`validate_foreign_keys`, one transaction each:
   SHARE UPDATE EXCLUSIVE on the new table and ROW SHARE on the referenced one, which block
   no reader or writer of them ("ALTER TABLE", VALIDATE CONSTRAINT).
4. :func:`attach`, one short transaction — SHARE ROW EXCLUSIVE on the parent (readers go
   on; writers of any partition wait for this one step), ACCESS EXCLUSIVE on the DEFAULT
   partition and on the tables the foreign keys reference (ATTACH drops the new table's own
   foreign-key action triggers, which live there; the parent's serve the partition), then the
   rows that arrived in the default since the last batch are moved, and ``ATTACH PARTITION``
   (SHARE UPDATE EXCLUSIVE on the parent, ACCESS EXCLUSIVE on the new table) finds the
   indexes and foreign keys already there and skips its scan of the new table, as the CHECK
   proves the bounds. It still scans what is left in the DEFAULT partition, only rows outside
   every new range by now (PostgreSQL would skip that scan only if the default had a CHECK
   excluding the range, which would reject the platform's inserts of that range meanwhile).
   The CHECK is dropped in the same transaction: the partition constraint says the same.
   Last, the new partition's triggers are set up as on the partition before it
   (``scripts.partitions.triggers``: statement triggers revisions created on every partition,
   clones they switched off), in the same transaction, so no insert sees it half set up.

Rows moved by step 2 are in a table that is not yet a partition: from their batch until the
ATTACH commits, a query through the parent does not see them (query the new table directly).
PostgreSQL allows no order that avoids this: it refuses to ATTACH while the DEFAULT partition
holds rows of the range, and a partition's bounds cannot be widened once attached.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection

from scripts.errors import PartitionError
from scripts.partitions import triggers
from scripts.partitions.catalog import PartitionedTable, quote_ident, quote_name
from scripts.partitions.ensure_plan import BOUNDS_CHECK
from scripts.partitions.period_math import Period


def create_table(conn: Connection, info: PartitionedTable, period: Period) -> None:
    """The new period's table, standalone, with the CHECK that proves its bounds."""
    parent = quote_name(conn, info.schema, info.name)
    new = quote_name(conn, info.schema, period.name)
    # LIKE copies no triggers and no foreign keys: ATTACH clones the row triggers, and the
    # foreign keys are added after the move (step 3), so moved rows fire no trigger and are
    # not checked one by one. INCLUDING INDEXES lets ATTACH find every index already built.
    conn.execute(
        text(
            f"CREATE TABLE {new} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
            " INCLUDING STORAGE INCLUDING GENERATED INCLUDING INDEXES)"
        )
    )
    conn.execute(
        text(
            f"ALTER TABLE {new} ADD CONSTRAINT {quote_ident(conn, BOUNDS_CHECK)}"
            f" CHECK ({_in_range(conn, info)})"
        ),
        _bounds(info, period),
    )


def move_batch(conn: Connection, info: PartitionedTable, period: Period, batch_rows: int | None) -> int:
    """Move up to ``batch_rows`` (all, if None) rows of ``period`` from the DEFAULT partition
    into the new table; return how many. Raises (and so rolls back) unless what left the
    default and what the new table now holds agree by count and md5 of the ordered rows."""
    assert info.default_partition is not None
    prep = conn.dialect.identifier_preparer
    default = quote_name(conn, info.schema, info.default_partition)
    new = quote_name(conn, info.schema, period.name)
    cols = ", ".join(prep.quote(c) for c in info.columns)
    limit = "" if batch_rows is None else " LIMIT :n"
    # One statement: the rows deleted are exactly the rows inserted, in the same snapshot.
    # ROW(...)::text of the named columns makes the md5 independent of physical column order.
    digest = f"md5(coalesce(string_agg(ROW({cols})::text, ',' ORDER BY ROW({cols})::text), ''))"
    with _user_triggers_disabled(conn, info.schema, info.default_partition):
        row = conn.execute(
            text(
                f"WITH batch AS (SELECT ctid FROM ONLY {default} WHERE {_in_range(conn, info)}{limit}),"
                f" gone AS (DELETE FROM ONLY {default} d USING batch WHERE d.ctid = batch.ctid"
                f" RETURNING {', '.join('d.' + prep.quote(c) for c in info.columns)}),"
                f" landed AS (INSERT INTO {new} ({cols}) SELECT {cols} FROM gone RETURNING {cols})"
                f" SELECT (SELECT count(*) FROM gone), (SELECT {digest} FROM gone),"
                f" (SELECT count(*) FROM landed), (SELECT {digest} FROM landed)"
            ),
            {**_bounds(info, period), "n": batch_rows},
        ).one()
    gone, landed = (int(row[0]), str(row[1])), (int(row[2]), str(row[3]))
    if gone != landed:  # rolled back by the caller's transaction: no row is lost
        raise PartitionError(
            f"moving rows of {period.name} out of {info.default_partition} did not verify:"
            f" {gone[0]} row(s) md5 {gone[1]} left, {landed[0]} row(s) md5 {landed[1]} arrived",
            "nothing of that batch was kept; report this, with the table definitions",
        )
    return gone[0]


def add_foreign_keys(conn: Connection, info: PartitionedTable, period: Period) -> list[str]:
    """The parent's foreign keys on the new table, NOT VALID, under the parent's names (so that
    ATTACH finds them instead of creating and validating its own); the names to validate."""
    new = quote_name(conn, info.schema, period.name)
    missing = conn.execute(
        text(
            "SELECT k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k"
            " WHERE k.conrelid = CAST(:parent AS regclass) AND k.contype = 'f' AND k.conparentid = 0"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = CAST(:new AS regclass)"
            " AND c.conname = k.conname) ORDER BY k.conname"
        ),
        {"parent": quote_name(conn, info.schema, info.name), "new": new},
    ).all()
    for name, definition in missing:
        # definition is the server's own text for the constraint (pg_get_constraintdef)
        conn.execute(
            text(f"ALTER TABLE {new} ADD CONSTRAINT {quote_ident(conn, name)} {definition} NOT VALID")
        )
    return list(
        conn.execute(
            text(
                "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:new AS regclass)"
                " AND contype = 'f' AND NOT convalidated ORDER BY conname"
            ),
            {"new": new},
        ).scalars()
    )


def validate_foreign_key(conn: Connection, info: PartitionedTable, period: Period, name: str) -> None:
    new = quote_name(conn, info.schema, period.name)
    conn.execute(text(f"ALTER TABLE {new} VALIDATE CONSTRAINT {quote_ident(conn, name)}"))


def attach(conn: Connection, info: PartitionedTable, period: Period) -> int:
    """Lock, move the rows that arrived since the last batch, ATTACH, drop the CHECK; return
    the rows moved here."""
    parent = quote_name(conn, info.schema, info.name)
    new = quote_name(conn, info.schema, period.name)
    # SHARE ROW EXCLUSIVE on the parent: readers go on; writers wait for this step. Writers must
    # wait *before* they route a row: an INSERT that routed a row to the DEFAULT partition with
    # the old partition map, then got its lock after our ATTACH, would fail the default's new
    # partition constraint (execPartition.c re-checks it for that reason). The mode also
    # conflicts with itself, so two `ensure` runs take turns.
    conn.execute(text(f"LOCK TABLE ONLY {parent} IN SHARE ROW EXCLUSIVE MODE"))
    moved = 0
    if info.default_partition:
        # ATTACH takes ACCESS EXCLUSIVE on the default partition to scan it; taking it now
        # keeps it still between the last move and that scan.
        default = quote_name(conn, info.schema, info.default_partition)
        conn.execute(text(f"LOCK TABLE ONLY {default} IN ACCESS EXCLUSIVE MODE"))
    # ATTACH drops the new table's own foreign-key action triggers, which live on the referenced
    # tables, so it takes ACCESS EXCLUSIVE on each (RemoveTriggerById): take them now, in a
    # stable order, so that any wait happens before the work, while lock_timeout bounds it.
    for referenced in _referenced_tables(conn, info):
        conn.execute(text(f"LOCK TABLE ONLY {referenced} IN ACCESS EXCLUSIVE MODE"))
    if info.default_partition:
        moved = move_batch(conn, info, period, None)
    # Bounds as UTC literals with their offset, spelled as revision 0001 spells them.
    conn.execute(
        text(f"ALTER TABLE {parent} ATTACH PARTITION {new} FOR VALUES FROM (:lo) TO (:hi)"),
        _bounds(info, period),
    )
    conn.execute(text(f"ALTER TABLE {new} DROP CONSTRAINT {quote_ident(conn, BOUNDS_CHECK)}"))
    triggers.match_template(conn, info, period)
    return moved


def _referenced_tables(conn: Connection, info: PartitionedTable) -> list[str]:
    """The tables the parent's foreign keys point at, quoted, in a stable order."""
    rows = conn.execute(
        text(
            "SELECT DISTINCT n.nspname, c.relname FROM pg_constraint k"
            " JOIN pg_class c ON c.oid = k.confrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE k.conrelid = CAST(:rel AS regclass) AND k.contype = 'f' AND k.conparentid = 0"
            " AND k.confrelid <> k.conrelid ORDER BY 1, 2"
        ),
        {"rel": quote_name(conn, info.schema, info.name)},
    ).all()
    return [quote_name(conn, schema, name) for schema, name in rows]


def rows_in(conn: Connection, info: PartitionedTable, period: Period) -> int:
    """Rows the new table holds (what an interrupted run left there)."""
    return int(
        conn.execute(
            text(f"SELECT count(*) FROM ONLY {quote_name(conn, info.schema, period.name)}")
        ).scalar_one()
    )


def default_has_rows(conn: Connection, info: PartitionedTable, period: Period) -> bool:
    if not info.default_partition:
        return False
    default = quote_name(conn, info.schema, info.default_partition)
    return bool(
        conn.execute(
            text(f"SELECT EXISTS (SELECT 1 FROM ONLY {default} WHERE {_in_range(conn, info)})"),
            _bounds(info, period),
        ).scalar_one()
    )


def _in_range(conn: Connection, info: PartitionedTable) -> str:
    # The partition constraint of a range partition, NOT NULL included ("CREATE TABLE",
    # PARTITION OF): a CHECK that implies it lets ATTACH skip its scan.
    key = conn.dialect.identifier_preparer.quote(info.key)
    kind = info.key_type
    return f"{key} IS NOT NULL AND {key} >= CAST(:lo AS {kind}) AND {key} < CAST(:hi AS {kind})"


def _bounds(info: PartitionedTable, period: Period) -> dict[str, str]:
    assert period.start is not None and period.end is not None
    return {"lo": info.bound_literal(period.start), "hi": info.bound_literal(period.end)}


@contextmanager
def _user_triggers_disabled(conn: Connection, schema: str, table: str) -> Iterator[None]:
    """Disable the enabled user triggers of ``table`` around a move of its rows, then restore.

    The rows are not deleted as an event: they move to the new table in the same transaction.
    The append-only trigger (0003) exists to stop deleting history, so it must not fire here.
    ALTER TABLE ... DISABLE TRIGGER is transactional and takes SHARE ROW EXCLUSIVE, which no
    other writer of ``table`` can share, so no other session ever runs without the trigger.
    Only triggers enabled now are touched, so one a DBA disabled on purpose stays disabled.
    """
    target = quote_name(conn, schema, table)
    names = list(
        conn.execute(
            text(
                "SELECT t.tgname FROM pg_trigger t WHERE t.tgrelid = CAST(:rel AS regclass)"
                " AND NOT t.tgisinternal AND t.tgenabled <> 'D' ORDER BY t.tgname"
            ),
            {"rel": target},
        ).scalars()
    )
    for name in names:
        conn.execute(text(f"ALTER TABLE {target} DISABLE TRIGGER {quote_ident(conn, name)}"))
    yield
    for name in names:
        conn.execute(text(f"ALTER TABLE {target} ENABLE TRIGGER {quote_ident(conn, name)}"))
