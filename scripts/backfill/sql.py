"""The SQL text of one data migration, built from a plan: identifiers quoted by the dialect's
preparer, the operator's SET and WHERE placed between newlines, values as bound parameters.

Pure: it needs a dialect, not a connection, so the text can be checked without a server.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import TextClause, text
from sqlalchemy.engine import Dialect

from scripts.backfill.plan import CHECKPOINT_TABLE, Plan
from scripts.db.sqltext import escape_colons


def key_params(prefix: str, values: Sequence[str] | None) -> dict[str, str]:
    """Bound parameters of a key row: ``{"lo_0": ..., "lo_1": ...}``."""
    return {f"{prefix}_{i}": v for i, v in enumerate(values or ())}


class Statements:
    """The statements of one data migration."""

    def __init__(self, dialect: Dialect, plan: Plan) -> None:
        q = dialect.identifier_preparer.quote
        self.table = (q(plan.schema) + "." if plan.schema else "") + q(plan.relname)
        self.cols = [q(c) for c in plan.key]
        self.key_list = ", ".join(self.cols)
        self.key_row = f"({self.key_list})"
        self.lo = "(" + ", ".join(f":lo_{i}" for i in range(len(plan.key))) + ")"
        # text() reads ":name" as a bind parameter; the operator's SQL binds none
        self.set_ = escape_colons(plan.set_)
        self.where = escape_colons(plan.where) if plan.where else None
        self.width = len(plan.key)
        self.key_has_max = plan.key_has_max
        self.checkpoints = q(CHECKPOINT_TABLE)

    def after(self, first: bool) -> str:
        """The walk's lower bound: every key after the last one done."""
        return "" if first else f"{self.key_row} > {self.lo}"

    def begin_batch(self) -> TextClause:
        """BEGIN and the batch's settings in one round trip; no operator text in it."""
        return text(
            "BEGIN;\n"
            "SELECT set_config('lock_timeout', :lock_timeout, true),"
            " set_config('synchronous_commit', 'off', true)"
        )

    def batch(self, first: bool) -> TextClause:
        """One statement that finds the end of the next key range, updates the range and moves
        the checkpoint (after ``begin_batch``).

        Round trips, not rows, are what a batch adds to a single UPDATE (each one waits for
        the server to be scheduled), so a batch sends three: ``begin_batch``, this, COMMIT. The
        range's end comes from an InitPlan, which the index scan takes as its bound. The
        operator's text is sent only here, as part of one statement, and only after
        expressions.py has parsed it as one assignment list and one expression.
        """
        after = self.after(first)
        batch = (
            f"SELECT {self.key_list} FROM {self.table}"
            + (f" WHERE {after}" if after else "")
            + f" ORDER BY {self.key_list} LIMIT :batch_size"
        )
        hi_cols = [f"_bf_k{i}" for i in range(self.width)]
        if self.key_has_max:
            # an aggregate over the batch: no window to materialise, no sort (4x cheaper)
            hi = f"SELECT max({self.cols[0]}) AS _bf_k0, count(*) AS _bf_n FROM _bf_batch HAVING count(*) > 0"
        else:
            named = ", ".join(f"{c} AS {h}" for c, h in zip(self.cols, hi_cols, strict=True))
            desc = ", ".join(f"{c} DESC" for c in self.cols)
            hi = f"SELECT {named}, count(*) OVER () AS _bf_n FROM _bf_batch ORDER BY {desc} LIMIT 1"
        hi_row = "(" + ", ".join(f"(SELECT {h} FROM _bf_hi)" for h in hi_cols) + ")"
        conditions = [c for c in (after, f"{self.key_row} <= {hi_row}") if c]
        if self.where:
            conditions.append(f"(\n{self.where}\n)")
        # newlines around operator SQL: a trailing ``-- comment`` cannot swallow what follows
        update_range = f"UPDATE {self.table} SET\n{self.set_}\nWHERE " + " AND ".join(conditions)
        hi_text = ", ".join(f"CAST({h} AS text)" for h in hi_cols)
        checkpoint = (
            f"UPDATE {self.checkpoints} SET last_key = (SELECT ARRAY[{hi_text}] FROM _bf_hi),"
            " rows_done = rows_done + (SELECT count(*) FROM _bf_upd),"
            " rows_walked = rows_walked + (SELECT _bf_n FROM _bf_hi),"
            " batches = batches + 1, updated_at = now()"
            " WHERE name = :name AND EXISTS (SELECT FROM _bf_hi) RETURNING 1"
        )
        return text(
            f"WITH _bf_batch AS ({batch}),\n_bf_hi AS ({hi}),\n_bf_upd AS ({update_range}\nRETURNING 1),\n"
            f"_bf_cp AS ({checkpoint})\n"
            f"SELECT {hi_text}, _bf_n, (SELECT count(*) FROM _bf_upd), (SELECT count(*) FROM _bf_cp)"
            " FROM _bf_hi"
        )

    def count(self, first: bool) -> TextClause:
        """Rows that match WHERE, and rows walked, after the checkpoint (the dry run)."""
        after = self.after(first)
        matching = f"count(*) FILTER (WHERE (\n{self.where}\n))" if self.where else "count(*)"
        return text(f"SELECT {matching}, count(*) FROM {self.table}" + (f" WHERE {after}" if after else ""))

    def explain_set(self) -> TextClause:
        """Plans the SET against the table (never executed): unknown columns, bad types."""
        return text(f"EXPLAIN UPDATE {self.table} SET\n{self.set_}\nWHERE false")

    def explain_where(self) -> TextClause:
        return text(f"EXPLAIN SELECT 1 FROM {self.table} WHERE (\n{self.where}\n)")
