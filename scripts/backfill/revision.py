"""Data migrations inside a revision's ``upgrade()``/``downgrade()``: the helpers revisions call
(as ``scripts.backfill.batch_update_in_revision``), online or offline (``alembic upgrade --sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.schema import CreateTable

from scripts.backfill import offline, progress
from scripts.backfill.checkpoints import CHECKPOINTS, checkpoint_table_exists
from scripts.backfill.plan import BatchOptions
from scripts.backfill.runner import BackfillResult, batch_update


def batch_update_in_revision(
    op: Any,
    *,
    table: str,
    set_: str,
    name: str,
    where: str | None = None,
    key: str | Sequence[str] | None = None,
    options: BatchOptions | None = None,
    **option_values: Any,
) -> BackfillResult | None:
    """A batched data migration inside a revision's ``upgrade()``.

    It runs outside the revision's transaction (``autocommit_block()``: what the revision did
    before is committed first, so its locks are not held for the whole backfill), one commit
    per batch. If it fails, the revision fails and ``alembic upgrade`` resumes it from its
    checkpoint. Offline (``--sql``) it emits the same loop as a PL/pgSQL DO block.
    ``name`` must stay the same for the life of the revision: it is the checkpoint's key.
    ``options``, or its fields by name (``batch_size=``, ``sleep=``, ``lock_timeout=``,
    ``max_retries=``), say how the batches run.
    """
    options = BatchOptions.of(options, **option_values)
    ctx = op.get_context()
    with ctx.autocommit_block():
        if ctx.as_sql:
            plan = offline.plan(table=table, set_=set_, where=where, key=key, name=name, options=options)
            for statement in offline.statements(plan):
                ctx.impl.static_output(statement)
            return None
        return batch_update(
            table=table,
            set_=set_,
            where=where,
            key=key,
            name=name,
            options=options,
            reporter=progress.for_stream(),
            connection=op.get_bind(),
        )


def forget_in_revision(op: Any, name: str) -> None:
    """For a downgrade: drop the checkpoint, so that upgrading again runs the migration again."""
    ctx = op.get_context()
    if ctx.as_sql:
        op.execute(CreateTable(CHECKPOINTS, if_not_exists=True))
        op.execute(CHECKPOINTS.delete().where(CHECKPOINTS.c.name == name))
        return
    conn = op.get_bind()
    if checkpoint_table_exists(conn):
        conn.execute(CHECKPOINTS.delete().where(CHECKPOINTS.c.name == name))
