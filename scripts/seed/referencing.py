"""What ``seed --replace`` must empty besides SEED_TABLES: every table that references them.

TRUNCATE refuses to empty a table that another table references unless that table is
emptied in the same command (PostgreSQL docs, TRUNCATE: "cannot truncate a table referenced
in a foreign key constraint"), and CASCADE would empty tables nobody named. So the tables are
found from the catalog (pg_constraint, followed recursively: a table referencing a table that
references ``users`` goes too), named in the result, and a table holding rows — which seed
never writes, so someone else did — is only emptied with ``force``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scripts.errors import ReferencingData

# Foreign keys on partitions are clones of their parent's (conparentid <> 0): the parent is
# the table to name and to truncate, and TRUNCATE of a partitioned table empties its partitions.
REFERENCING_TABLES = """
WITH RECURSIVE refs (oid, via) AS (
    SELECT c.conrelid, c.confrelid FROM pg_constraint c
    WHERE c.contype = 'f' AND c.conparentid = 0 AND c.confrelid = ANY (%(owned)s::regclass[])
  UNION
    SELECT c.conrelid, c.confrelid FROM pg_constraint c JOIN refs r ON c.confrelid = r.oid
    WHERE c.contype = 'f' AND c.conparentid = 0
)
SELECT n.nspname, t.relname, min(v.oid::regclass::text)
FROM refs r JOIN pg_class t ON t.oid = r.oid JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class v ON v.oid = r.via
WHERE r.oid <> ALL (%(owned)s::regclass[])
GROUP BY 1, 2 ORDER BY 1, 2
"""


@dataclass(frozen=True)
class Referencing:
    schema: str
    name: str
    references: str  # one table it references (a seeded one, or one on the way to it)
    has_rows: bool

    @property
    def qualified(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"


def referencing_tables(cur: Any, owned: Sequence[str]) -> list[Referencing]:
    """Every table outside ``owned`` whose foreign keys lead to one of ``owned``."""
    from psycopg2 import sql

    cur.execute(REFERENCING_TABLES, {"owned": list(owned)})
    found = cur.fetchall()
    out = []
    for schema, name, via in found:
        cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(schema, name)))
        out.append(Referencing(schema, name, via, bool(cur.fetchone()[0])))
    return out


def truncate_owned(cur: Any, owned: Sequence[str], *, force: bool) -> list[str]:
    """TRUNCATE ``owned`` and every table referencing them; return the latter's names.

    Raises ReferencingData, before anything is emptied, when one of those tables holds rows
    and ``force`` is not given.
    """
    from psycopg2 import sql

    extra = referencing_tables(cur, owned)
    holding = [t for t in extra if t.has_rows]
    if holding and not force:
        listed = ", ".join(f"{t.qualified} (references {t.references})" for t in holding)
        raise ReferencingData(
            f"refusing to replace: {listed} holds rows seed did not make, and would have to be emptied too",
            "empty or drop it yourself, or pass --force to empty it with the seed tables",
        )
    targets = [sql.Identifier(name) for name in owned] + [sql.Identifier(t.schema, t.name) for t in extra]
    cur.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(targets)))
    return [t.qualified for t in extra]
