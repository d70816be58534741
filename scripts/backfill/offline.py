"""Offline (``--sql``) data migrations: the batched loop of runner.py as PL/pgSQL.

A DBA reviews the DO block and runs it with ``psql -v ON_ERROR_STOP=1``. It keeps the same
checkpoint row as the online runner (last key done, as text), so a run started online can
finish offline and the other way round, and takes the same advisory lock per name.

The loop runs at a fixed batch size (the given one, else the default) and without the online
runner's health checks (replica lag, autovacuum): a DBA running a script watches those.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from scripts.backfill.checkpoints import CHECKPOINTS
from scripts.backfill.expressions import check_key_not_assigned, parse_expressions
from scripts.backfill.plan import (
    ADVISORY_CLASS,
    CHECKPOINT_TABLE,
    OFFLINE_DOLLAR_TAG,
    BatchOptions,
    Plan,
    name_lock_id,
    parse_key,
    split_table,
)
from scripts.db.sqltext import quote_literal
from scripts.errors import DataMigrationError

NOTICE_EVERY = 10  # batches between two NOTICE lines of the loop
SAVED_TIMEOUT_SETTING = "alp_db.saved_statement_timeout"  # a custom GUC: two-part names are free


def _literal(value: str | None) -> str:
    """A text value as a literal of the script (the same text the online run stores)."""
    return "NULL" if value is None else quote_literal(value)


def plan(
    *,
    table: str,
    set_: str,
    where: str | None = None,
    key: str | Sequence[str] | None = None,
    name: str,
    options: BatchOptions | None = None,
    **option_values: Any,
) -> Plan:
    """A plan without a database: the key is given, or is the primary key of the table's model
    (only then are the models loaded)."""
    options = BatchOptions.of(options, **option_values)
    expressions = parse_expressions(set_, where)
    schema, relname = split_table(table)
    key_cols = parse_key(key)
    if key_cols is None:
        from models import metadata

        model = metadata.tables.get(f"{schema}.{relname}" if schema else relname)
        if model is None or not model.primary_key.columns:
            raise DataMigrationError(
                f"table {table!r} is not modelled, so offline mode cannot find its key",
                "pass key=... to batch_update_in_revision",
            )
        key_cols = tuple(c.name for c in model.primary_key.columns)
    check_key_not_assigned(expressions.assigned, key_cols)
    return Plan(
        name=name,
        table=table.strip(),
        schema=schema,
        relname=relname,
        key=key_cols,
        set_=expressions.set_,
        where=expressions.where,
        options=options,
    )


def statements(plan: Plan) -> list[str]:
    """The data migration as SQL for ``psql -v ON_ERROR_STOP=1``: checkpoint DDL, then a DO block
    that commits per batch. COMMIT inside DO works only when DO is not itself inside a
    transaction block (PL/pgSQL "Transaction Management"): in a revision, Alembic's
    autocommit_block emits COMMIT before it and BEGIN after it; do not run it with ``psql -1``.
    """
    prep = postgresql.dialect().identifier_preparer
    q = prep.quote
    table = (q(plan.schema) + "." if plan.schema else "") + q(plan.relname)
    cols = [q(c) for c in plan.key]
    n = len(cols)
    key_list = ", ".join(cols)
    lo = [f"_bf_lo_{i}" for i in range(n)]
    hi = [f"_bf_hi_{i}" for i in range(n)]
    lo_row, hi_row = "(" + ", ".join(lo) + ")", "(" + ", ".join(hi) + ")"
    name = _literal(plan.name)
    cp = q(CHECKPOINT_TABLE)
    lock_args = f"{ADVISORY_CLASS}, {name_lock_id(plan.name)}"
    declare = [f"    {v} {table}.{c}%TYPE;" for v, c in zip(lo + hi, cols + cols, strict=True)]
    where = f"\n              AND (\n{plan.where}\n              )" if plan.where else ""
    create = str(CreateTable(CHECKPOINTS, if_not_exists=True).compile(dialect=postgresql.dialect())).strip()
    insert = (
        f"INSERT INTO {cp} (name, table_name, key_columns, set_expr, where_expr)"
        f" VALUES ({name}, {_literal(plan.table)}, ARRAY[{', '.join(_literal(c) for c in plan.key)}]::text[],"
        f" {_literal(plan.set_)}, {_literal(plan.where)}) ON CONFLICT (name) DO NOTHING"
    )
    resume = "\n".join(f"        {hi[i]} := _bf_cp.last_key[{i + 1}];" for i in range(n))
    pause = (
        f"        IF {lo[0]} IS NOT NULL THEN\n"
        f"            PERFORM pg_sleep({plan.options.sleep});\n"
        "        END IF;\n"
        if plan.options.sleep
        else ""
    )
    retries, backoff = plan.options.max_retries, plan.options.backoff
    body = f"""DO {OFFLINE_DOLLAR_TAG}
-- Batched data migration {plan.name}: UPDATE {table} SET ... WHERE ... in key ranges of
-- {plan.options.first_batch_size}, one COMMIT per batch together with its checkpoint row in {cp}.
DECLARE
{chr(10).join(declare)}
    _bf_cp {cp}%ROWTYPE;
    _bf_walked bigint;
    _bf_updated bigint;
    _bf_retries integer := 0;
BEGIN
    IF NOT pg_try_advisory_lock({lock_args}) THEN
        RAISE EXCEPTION 'data migration % is already running', {name};
    END IF;
    SELECT * INTO _bf_cp FROM {cp} WHERE name = {name};
    IF _bf_cp.table_name IS DISTINCT FROM {_literal(plan.table)}
       OR _bf_cp.key_columns IS DISTINCT FROM ARRAY[{", ".join(_literal(c) for c in plan.key)}]::text[]
       OR _bf_cp.set_expr IS DISTINCT FROM {_literal(plan.set_)}
       OR _bf_cp.where_expr IS DISTINCT FROM {_literal(plan.where)} THEN
        RAISE EXCEPTION 'data migration % already exists for another table or expression', {name};
    END IF;
    IF _bf_cp.finished_at IS NOT NULL THEN
        RAISE NOTICE 'data migration % already finished', {name};
        PERFORM pg_advisory_unlock({lock_args});
        RETURN;
    END IF;
    -- the first key not done yet (the checkpoint holds the last key done, as text)
    IF _bf_cp.last_key IS NULL THEN
        SELECT {key_list} INTO {", ".join(lo)} FROM {table} ORDER BY {key_list} LIMIT 1;
    ELSE
{resume}
        SELECT {key_list} INTO {", ".join(lo)} FROM {table}
            WHERE ({key_list}) > {hi_row} ORDER BY {key_list} LIMIT 1;
    END IF;
    WHILE {lo[0]} IS NOT NULL LOOP
        BEGIN
            PERFORM set_config('lock_timeout', {_literal(plan.options.lock_timeout)}, true),
                    set_config('synchronous_commit', 'off', true);
            SELECT {", ".join("b." + c for c in cols)}, count(*) OVER ()
              INTO {", ".join(hi)}, _bf_walked
              FROM (SELECT {key_list} FROM {table} WHERE ({key_list}) >= {lo_row}
                    ORDER BY {key_list} LIMIT {plan.options.first_batch_size}) AS b
             ORDER BY {", ".join("b." + c + " DESC" for c in cols)} LIMIT 1;
            UPDATE {table} SET
{plan.set_}
            WHERE ({key_list}) >= {lo_row} AND ({key_list}) <= {hi_row}{where};
            GET DIAGNOSTICS _bf_updated = ROW_COUNT;
            UPDATE {cp}
               SET last_key = ARRAY[{", ".join(h + "::text" for h in hi)}],
                   rows_done = rows_done + _bf_updated,
                   rows_walked = rows_walked + _bf_walked, batches = batches + 1, updated_at = now()
             WHERE name = {name}
            RETURNING * INTO _bf_cp;
        EXCEPTION WHEN lock_not_available OR deadlock_detected OR serialization_failure THEN
            -- a row is locked by someone else: roll this batch back, wait, try it again
            _bf_retries := _bf_retries + 1;
            IF _bf_retries > {retries} THEN
                RAISE;
            END IF;
            RAISE NOTICE 'data migration %: % (retry % of {retries})', {name}, SQLERRM, _bf_retries;
            PERFORM pg_sleep(least({backoff.base_s} * 2 ^ (_bf_retries - 1), {backoff.cap_s}));
            CONTINUE;
        END;
        -- outside the block with the exception handler: a subtransaction cannot commit
        COMMIT;
        _bf_retries := 0;
        IF _bf_cp.batches % {NOTICE_EVERY} = 0 THEN
            RAISE NOTICE 'data migration %: % rows updated, % walked',
                {name}, _bf_cp.rows_done, _bf_cp.rows_walked;
        END IF;
        SELECT {key_list} INTO {", ".join(lo)} FROM {table}
            WHERE ({key_list}) > {hi_row} ORDER BY {key_list} LIMIT 1;
{pause}    END LOOP;
    UPDATE {cp} SET finished_at = now(), updated_at = now() WHERE name = {name}
    RETURNING * INTO _bf_cp;
    COMMIT;
    RAISE NOTICE 'data migration % finished: % rows updated', {name}, _bf_cp.rows_done;
    PERFORM pg_advisory_unlock({lock_args});
END
{OFFLINE_DOLLAR_TAG}"""
    # statement_timeout is armed once per top-level statement and COMMIT inside the DO block
    # does not re-arm it, so the session's timeout would cancel a long loop: lift it for the
    # loop (each batch is bounded by its lock_timeout) and put the script's value back after.
    save = (
        f"SELECT set_config({_literal(SAVED_TIMEOUT_SETTING)}, current_setting('statement_timeout'), false)"
    )
    restore = (
        f"SELECT set_config('statement_timeout', current_setting({_literal(SAVED_TIMEOUT_SETTING)}), false)"
    )
    return [create + ";", insert + ";", save + ";", "SET statement_timeout = 0;", body + ";", restore + ";"]
