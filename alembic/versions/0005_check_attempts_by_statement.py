"""Attempts only on active items, checked once per statement instead of once per row.

0003's row trigger looks up the item of every inserted attempt (one query per row); this
revision checks a whole INSERT or COPY in one query over its transition table (CREATE
TRIGGER, "REFERENCING NEW TABLE"; AFTER ... FOR EACH STATEMENT). The rule is unchanged:
the statement fails with the same message (item ... is not active) for its first bad row.

Why both levels remain: a statement trigger on the partitioned ``attempts`` fires only for
statements that name ``attempts``; one that names a partition fires that partition's own
statement triggers, and statement triggers are not cloned onto partitions (CREATE TRIGGER,
"Notes"; row triggers with transition tables are not allowed on partitions at all). So each
partition present now gets the same statement trigger and its clone of 0003's row trigger is
disabled, by ``attempts_check_partition_by_statement(partition)``; a partition created later
keeps the enabled row clone (checked per row, as before) until that function is run on it.
The append-only trigger stays a row trigger: it fires only on UPDATE and DELETE, so it costs
the insert path nothing, and a statement trigger would miss a DELETE naming a partition.

What it locks: SHARE ROW EXCLUSIVE on attempts and on each partition for a moment (CREATE
TRIGGER, ALTER TABLE ... DISABLE TRIGGER; metadata only, no scan). Inserts wait for it; it
waits for open transactions on attempts (the runtime's lock_timeout bounds the wait).
Undo: the downgrade drops the statement triggers and re-enables the row clones, 0003 exactly.

Revision ID: 0005
Revises: 0004
"""

from scripts.sqlfiles import execute_sql_file

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_sql_file(__file__, "upgrade")


def downgrade() -> None:
    execute_sql_file(__file__, "downgrade")
