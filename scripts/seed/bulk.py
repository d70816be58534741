"""Bulk mode: what the seed takes off the tables before its COPY, and puts back after it.

PostgreSQL's "Populating a Database" (docs, section 14.4): per-row checks and index updates
cost more than the load itself, so inside the seed's one transaction

- the foreign keys of FOREIGN_KEY_TABLES are dropped and re-added after the load (re-adding
  validates every row in one pass, 14.4.5);
- the active-item triggers of attempts are dropped, replaced by ACTIVE_ITEM_CHECK (the same
  rule as one set-based query) and re-created from their own definitions;
- the indexes of INDEX_TABLES that were empty are dropped and rebuilt after the load, their
  primary key and unique constraints included ("creating an index on pre-existing data is
  quicker than updating it incrementally as each row is loaded", 14.4.3).

The triggers are dropped rather than disabled: a disabled row trigger still makes COPY into a
partition insert row by row instead of in batches, and a statement trigger with a transition
table, disabled or not, does the same for COPY into a partitioned table and collects every row
in its transition table (copyfrom.c, where it chooses ``insertMethod``). On a million attempts
that alone is about 1.5 s of a 4.6 s COPY. Everything comes back as it was: definitions,
names (the partitions' index names included), enabled states and comments; the catalog test
in tests/test_seed.py compares them before and after. Nothing is ever visible half-done: the
DDL is transactional and its ACCESS EXCLUSIVE locks keep every other session out until commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from psycopg2 import sql

from scripts.errors import SeedFailed

FOREIGN_KEY_TABLES = ("attempts", "skill_mastery")
INDEX_TABLES = ("attempts", "skill_mastery", "learning_sessions")
# Memory for the rebuilds, this transaction only (docs 14.4.4).
MAINTENANCE_WORK_MEM = "256MB"

FOREIGN_KEYS = """
    SELECT r.relname, c.conname, pg_get_constraintdef(c.oid), obj_description(c.oid, 'pg_constraint')
    FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
    WHERE c.contype = 'f' AND c.conparentid = 0 AND c.conrelid = ANY (%s::regclass[])
    ORDER BY 1, 2
"""
# The indexes of the empty tables, top-level ones only (a partitioned index takes its
# partitions' copies with it): plain ones, and primary key and unique constraints, except one
# a foreign key still refers to, one that is the replica identity, and one another object
# depends on (a view grouping by the primary key: "functional dependency", SELECT's GROUP BY).
# An index marked for CLUSTER or in a tablespace of its own stays too: pg_get_indexdef renders
# neither. Whatever stays is kept up to date row by row, correct and slower. Constraints come
# first, so that they are re-added before the plain indexes are rebuilt (the foreign keys last).
INDEXES = """
    SELECT i.oid::regclass::text, pg_get_indexdef(i.oid), obj_description(i.oid, 'pg_class'),
           t.relname, c.conname, pg_get_constraintdef(c.oid), obj_description(c.oid, 'pg_constraint')
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
    LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
    WHERE t.oid = ANY (%s::regclass[]) AND NOT t.relispartition
      AND NOT x.indisclustered AND i.reltablespace = 0
      AND (c.oid IS NULL AND NOT x.indisunique
           OR c.contype IN ('p', 'u') AND NOT x.indisreplident
              AND NOT EXISTS (
                  SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = x.indexrelid)
              AND NOT EXISTS (
                  SELECT 1 FROM pg_depend d WHERE d.refclassid = 'pg_constraint'::regclass
                  AND d.refobjid = c.oid AND d.deptype = 'n'))
    ORDER BY c.oid IS NULL, 1
"""
# Every partition's copy of those indexes, keyed by (its table, the top-level index): a rebuilt
# partitioned index names its copies afresh, so each is renamed back to what it was.
PARTITION_INDEXES = """
    SELECT t.oid::regclass::text, r.root, p.relid::regclass::text, i.relname
    FROM unnest(%s::text[]) r (root), pg_partition_tree(r.root::regclass) p
    JOIN pg_class i ON i.oid = p.relid JOIN pg_index x ON x.indexrelid = p.relid
    JOIN pg_class t ON t.oid = x.indrelid
    WHERE p.level > 0
"""

# The rule's triggers: per row since revision 0003; 0005 adds a per-statement one (on the
# parent and on each partition) and disables the row clones on the partitions.
ACTIVE_ITEM_TRIGGERS = ("trg_attempts_require_active_item", "trg_attempts_require_active_items")
# The parent's are dropped (its row trigger's clones go with it) and re-created from
# pg_get_triggerdef; a partition's own are disabled. Parent first: re-creating a row trigger
# clones it onto the partitions enabled, and their recorded states are set after that.
TRIGGERS = """
    SELECT n.nspname, c.relname, t.tgname, t.tgenabled,
           CASE WHEN NOT c.relispartition THEN pg_get_triggerdef(t.oid) END,
           t.tgparentid <> 0, obj_description(t.oid, 'pg_trigger')
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT t.tgisinternal AND t.tgname = ANY (%s)
      AND t.tgrelid IN (SELECT relid FROM pg_partition_tree('attempts'))
    ORDER BY c.relispartition, 1, 2, 3
"""
# Every item the window's attempts are on that is not active (or not there). No LIMIT: with
# one, the planner expects an early hit and probes items once per attempt (a million index
# scans, 1.7 s); without, it hashes the items once and reads the attempts in one pass.
ACTIVE_ITEM_CHECK = """
    SELECT a.item_id::text, min(coalesce(i.status::text, 'missing'))
    FROM attempts a LEFT JOIN items i ON i.id = a.item_id
    WHERE a.attempted_at >= %(lo)s AND a.attempted_at < %(hi)s
      AND i.status IS DISTINCT FROM 'active'
    GROUP BY 1 ORDER BY 1
"""


@dataclass(frozen=True)
class Trigger:
    schema: str
    table: str
    name: str
    enabled: str  # pg_trigger.tgenabled
    definition: str | None  # pg_get_triggerdef of a parent's: dropped, then re-created
    clone: bool  # a partition's clone of the parent's row trigger: goes and comes with it
    comment: str | None

    @property
    def relation(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.table)


@dataclass(frozen=True)
class Constraint:
    table: str
    name: str
    definition: str  # pg_get_constraintdef: the server's own rendering
    comment: str | None


@dataclass(frozen=True)
class Index:
    name: str  # regclass text
    definition: str  # pg_get_indexdef
    comment: str | None


@dataclass
class Suspended:
    """What suspend() took off, to be put back by restore()."""

    foreign_keys: list[Constraint] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)  # primary keys and unique ones
    indexes: list[Index] = field(default_factory=list)
    # (partition's table, top-level index) -> the partition's index name, before the drop
    partition_index_names: dict[tuple[str, str], str] = field(default_factory=dict)


def suspend(cur: Any) -> Suspended:
    """Drop the foreign keys, triggers and indexes bulk mode loads without; return them."""
    taken = Suspended()
    cur.execute(FOREIGN_KEYS, (list(FOREIGN_KEY_TABLES),))
    taken.foreign_keys = [Constraint(*row) for row in cur.fetchall()]
    for fk in taken.foreign_keys:
        _drop_constraint(cur, fk)
    cur.execute(TRIGGERS, (list(ACTIVE_ITEM_TRIGGERS),))
    taken.triggers = [Trigger(*row) for row in cur.fetchall()]
    for trigger in taken.triggers:
        if trigger.definition is not None:
            drop = sql.SQL("DROP TRIGGER {} ON {}")
            cur.execute(drop.format(sql.Identifier(trigger.name), trigger.relation))
        elif not trigger.clone and trigger.enabled != "D":
            _set_trigger(cur, trigger, "D")
    _suspend_indexes(cur, taken)
    return taken


def restore(cur: Any, taken: Suspended, lo: dt.datetime, hi: dt.datetime) -> None:
    """Rebuild the indexes, check the triggers' rule over the window, put everything back."""
    if taken.constraints or taken.indexes:
        cur.execute("SELECT set_config('maintenance_work_mem', %s, true)", (MAINTENANCE_WORK_MEM,))
    for constraint in taken.constraints:
        _add_constraint(cur, constraint)
    for index in taken.indexes:
        cur.execute(sql.SQL(_with_partitions(index.definition)))
        _comment(cur, sql.SQL("INDEX {}").format(sql.SQL(index.name)), index.comment)
    _rename_partition_indexes(cur, taken.partition_index_names)

    cur.execute(ACTIVE_ITEM_CHECK, {"lo": lo, "hi": hi})
    bad = cur.fetchone()
    if bad:
        raise SeedFailed(f"an attempt refers to item {bad[0]}, which is not active (status: {bad[1]})")
    for trigger in taken.triggers:
        if trigger.definition is not None:
            cur.execute(sql.SQL(trigger.definition))
            if trigger.enabled != "O":
                _set_trigger(cur, trigger, trigger.enabled)
        else:
            _set_trigger(cur, trigger, trigger.enabled)
        if not trigger.clone:
            target = sql.SQL("TRIGGER {} ON {}").format(sql.Identifier(trigger.name), trigger.relation)
            _comment(cur, target, trigger.comment)
    for fk in taken.foreign_keys:
        _add_constraint(cur, fk)


def _suspend_indexes(cur: Any, taken: Suspended) -> None:
    empty = []
    for table in INDEX_TABLES:
        cur.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table)))
        if cur.fetchone()[0]:
            empty.append(table)
    if not empty:
        return
    cur.execute(INDEXES, (empty,))
    found = cur.fetchall()
    roots = [name for name, *_ in found]
    cur.execute(PARTITION_INDEXES, (roots,))
    taken.partition_index_names = {(table, root): name for table, root, _, name in cur.fetchall()}
    for name, definition, comment, table, conname, condef, concomment in found:
        if conname is None:
            taken.indexes.append(Index(name, definition, comment))
            cur.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))
        else:
            constraint = Constraint(table, conname, condef, concomment)
            taken.constraints.append(constraint)
            _drop_constraint(cur, constraint)


def _with_partitions(definition: str) -> str:
    """pg_get_indexdef renders a partitioned index "ON ONLY parent" (pg_dump attaches the
    partitions' indexes one by one); without ONLY, CREATE INDEX builds every partition's copy
    too. The parsed statement's relation is edited, not the text."""
    import pglast
    from pglast import ast
    from pglast.stream import RawStream

    (raw,) = pglast.parse_sql(definition)
    statement = raw.stmt
    assert isinstance(statement, ast.IndexStmt) and statement.relation is not None
    if statement.relation.inh:
        return definition
    statement.relation.inh = True
    return str(RawStream()(statement))


def _rename_partition_indexes(cur: Any, before: dict[tuple[str, str], str]) -> None:
    if not before:
        return
    cur.execute(PARTITION_INDEXES, (sorted({root for _, root in before}),))
    for table, root, current, name in cur.fetchall():
        wanted = before.get((table, root))
        if wanted and wanted != name:
            cur.execute(
                sql.SQL("ALTER INDEX {} RENAME TO {}").format(sql.SQL(current), sql.Identifier(wanted))
            )


def _drop_constraint(cur: Any, constraint: Constraint) -> None:
    cur.execute(
        sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            sql.Identifier(constraint.table), sql.Identifier(constraint.name)
        )
    )


def _add_constraint(cur: Any, constraint: Constraint) -> None:
    cur.execute(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
            sql.Identifier(constraint.table), sql.Identifier(constraint.name)
        )
        + sql.SQL(constraint.definition)
    )
    target = sql.SQL("CONSTRAINT {} ON {}").format(
        sql.Identifier(constraint.name), sql.Identifier(constraint.table)
    )
    _comment(cur, target, constraint.comment)


def _set_trigger(cur: Any, trigger: Trigger, enabled: str) -> None:
    from scripts.db.sqltext import TRIGGER_ENABLED_CLAUSE

    cur.execute(
        sql.SQL("ALTER TABLE {} {} TRIGGER {}").format(
            trigger.relation, sql.SQL(TRIGGER_ENABLED_CLAUSE[enabled]), sql.Identifier(trigger.name)
        )
    )


def _comment(cur: Any, target: sql.Composable, comment: str | None) -> None:
    if comment is not None:
        cur.execute(sql.SQL("COMMENT ON {} IS {}").format(target, sql.Literal(comment)))
