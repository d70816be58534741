"""``seed``: load synthetic platform data (``scripts.seed.activity``) with binary COPY, guarded.

Everything is loaded in one transaction: a seed is all there or not there at all. The target
is refused when it looks like production (ENVIRONMENT_SETTING, or more learners than
DEFAULT_MAX_EXISTING_LEARNERS) unless forced, and when it holds seed data already unless
``replace`` (TRUNCATE of SEED_TABLES and of every table that references them, in the same
transaction: ``scripts.seed.referencing``).

Bulk mode (the default; ``row_checks=False``) follows PostgreSQL's "Populating a Database"
(docs, section 14.4): per-row checks cost more than the load itself (a million attempts:
~6 s in the plpgsql active-item trigger, ~8 s in foreign-key triggers, against ~4 s for COPY),
so inside the seed's transaction the foreign keys of BULK_FOREIGN_KEY_TABLES are dropped and
re-added after the load — re-adding validates every row in one pass — and the active-item
trigger is disabled and replaced by ACTIVE_ITEM_CHECK, the same rule as one set-based query;
the plain indexes of tables that were empty are rebuilt after the load instead of being
updated row by row (section 14.4.3). For a million attempts the load of pre-made rows
takes 11.4 s this way on a 2-core machine (benchmarks/bench_seed.py, 2026-12-02; the same
code took 4.0 s on the faster machine of 2026-11-25), several times that with every check
and index firing per row.
Nothing is ever visible half-done: the DDL is transactional and its ACCESS EXCLUSIVE lock
keeps every other session out until commit, when the constraints and trigger are back.
It needs ownership of the tables; ``row_checks=True`` loads with every check firing per row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scripts.errors import (
    AlpDbError,
    AlreadySeeded,
    ConnectionLost,
    PermissionDenied,
    ProductionDatabase,
    SeedFailed,
)
from scripts.seed.presets import (
    DEFAULT_MAX_EXISTING_LEARNERS,
    SEED_EMAIL_DOMAIN,
    SEED_TABLES,
    SEED_WINDOW,
    SeedPlan,
    make_plan,
)
from scripts.seed.referencing import truncate_owned

if TYPE_CHECKING:  # copy_binary imports numpy, which only generating needs
    from scripts.seed.copy_binary import Encoded

# One seed at a time per database (a transaction-level advisory lock; no privilege needed).
SEED_LOCK_KEY = int.from_bytes(hashlib.sha256(b"alp-db:seed").digest()[:8], "big", signed=True)

# A database is taken for production when this database-level setting says so:
#   ALTER DATABASE app SET alp_db.environment = 'production';
# (a custom parameter: PostgreSQL docs 20.16 "Customized Options"), or when it holds more
# learners than DEFAULT_MAX_EXISTING_LEARNERS. --force overrides both.
ENVIRONMENT_SETTING = "alp_db.environment"
PRODUCTION_ENVIRONMENTS = frozenset({"production", "prod"})

# Bulk mode (see the module docstring): foreign keys dropped and re-added around the load.
BULK_FOREIGN_KEY_TABLES = ("attempts", "skill_mastery")
# ...and, when one of these tables is empty before the load, its plain (non-unique, not
# constraint-backed) indexes are dropped and rebuilt from their own definitions after it:
# "creating an index on pre-existing data is quicker than updating it incrementally as each
# row is loaded" (docs 14.4.3). Unique and primary-key indexes stay, enforcing as rows arrive.
BULK_INDEX_TABLES = ("attempts", "skill_mastery", "learning_sessions")
ON_ONLY = re.compile(r"^(CREATE (?:UNIQUE )?INDEX \S+ ON )ONLY ")
# Memory for those rebuilds, this transaction only (docs 14.4.4).
BULK_MAINTENANCE_WORK_MEM = "256MB"
# The triggers bulk mode disables on attempts and its partitions, and the set-based query that
# checks the same rule after the load: attempts only on active items. Per row since revision
# 0003; revision 0005 adds a per-statement one and disables the row clones on the partitions
# it finds. Each is put back exactly as found, relation by relation: ENABLE on the parent
# recurses to the partitions' clones, so the partitions are restored after it.
ACTIVE_ITEM_TRIGGERS = ("trg_attempts_require_active_item", "trg_attempts_require_active_items")
TRIGGERS_OF_ATTEMPTS = """
    SELECT n.nspname, c.relname, t.tgname, t.tgenabled
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT t.tgisinternal AND t.tgname = ANY (%s)
      AND t.tgrelid IN (SELECT relid FROM pg_partition_tree('attempts'))
    ORDER BY c.relispartition, 1, 2, 3
"""
Trigger = tuple[str, str, str, str]  # schema, table, trigger, tgenabled
# Where the seed window's attempts went (the shape report), all partitions of attempts.
PARTITION_COUNTS = """
    SELECT tableoid::regclass::text, count(*) FROM attempts
    WHERE attempted_at >= %(lo)s AND attempted_at < %(hi)s GROUP BY 1 ORDER BY 1
"""
ACTIVE_ITEM_CHECK = """
    SELECT a.item_id::text, coalesce(i.status::text, 'missing')
    FROM attempts a LEFT JOIN items i ON i.id = a.item_id
    WHERE a.attempted_at >= %(lo)s AND a.attempted_at < %(hi)s
      AND i.status IS DISTINCT FROM 'active'
    LIMIT 1
"""


@dataclass
class SeedResult:
    seed: int | None  # None when load() was given streams of unknown origin
    rows: dict[str, int]
    seconds: float
    replaced: bool
    bulk_mode: bool
    # Tables outside SEED_TABLES that --replace emptied because they reference seeded ones.
    cleared: list[str] = field(default_factory=list)
    # How adaptive the attempts look (activity.Chosen.shape) and where they went.
    shape: dict[str, Any] = field(default_factory=dict)
    window: tuple[str, str] = field(default=(SEED_WINDOW[0].isoformat(), SEED_WINDOW[1].isoformat()))


@dataclass
class TargetState:
    environment: str | None
    learners: int
    seed_users: int


# Called after each COPY with (table, rows just loaded), and once with (FINISHING, 0).
Progress = Callable[[str, int], None]
FINISHING = "rebuilding indexes, validating keys"


def inspect_target(cursor: Any) -> TargetState:
    cursor.execute("SELECT current_setting(%s, true)", (ENVIRONMENT_SETTING,))
    environment = cursor.fetchone()[0] or None
    cursor.execute(
        "SELECT count(*) FILTER (WHERE role = 'learner'), count(*) FILTER (WHERE email LIKE %s) FROM users",
        ("%@" + SEED_EMAIL_DOMAIN,),
    )
    learners, seed_users = cursor.fetchone()
    return TargetState(environment, learners, seed_users)


def check_target(
    state: TargetState, database: str, *, force: bool, replace: bool, max_existing_learners: int
) -> None:
    """Raise when the target looks like production (unless forced) or is seeded already."""
    if not force:
        if state.environment and state.environment.lower() in PRODUCTION_ENVIRONMENTS:
            raise ProductionDatabase(
                f"refusing to seed {database!r}: it is marked {ENVIRONMENT_SETTING} = {state.environment!r}",
                "seed a development database, or pass --force if you really mean this one",
            )
        if state.learners > max_existing_learners:
            raise ProductionDatabase(
                f"refusing to seed {database!r}: it already has {state.learners} learners"
                f" (more than {max_existing_learners}, so it looks like production)",
                "seed a development database, or pass --force (or raise --max-existing-learners)",
            )
    if state.seed_users and not replace:
        raise AlreadySeeded(
            f"{database!r} already holds seed data ({state.seed_users} users at {SEED_EMAIL_DOMAIN})",
            "pass --replace to empty the platform tables and seed again, or use a fresh database",
        )


def seed(
    database_url: Any = None,
    plan: SeedPlan | None = None,
    *,
    force: bool = False,
    replace: bool = False,
    max_existing_learners: int = DEFAULT_MAX_EXISTING_LEARNERS,
    row_checks: bool = False,
    progress: Progress | None = None,
) -> SeedResult:
    """Generate ``plan``'s rows and load them into the database, in one transaction.

    ``replace`` first empties SEED_TABLES (TRUNCATE: every row, seed or not) and every table
    that references them (named in ``SeedResult.cleared``; one holding rows only with
    ``force``) in the same transaction; without it, seed data is added next to whatever the tables hold, and a
    database that holds seed data already is refused.
    """
    from scripts.seed.activity import encoded  # numpy: only when seeding

    plan = plan or make_plan()
    shape: dict[str, Any] = {}
    result = load(
        database_url,
        encoded(plan, shape),
        force=force,
        replace=replace,
        max_existing_learners=max_existing_learners,
        row_checks=row_checks,
        progress=progress,
    )
    result.seed = plan.seed
    result.shape = {**shape, **result.shape}
    return result


def load(
    database_url: Any,
    streams: Iterable[Encoded],
    *,
    force: bool = False,
    replace: bool = False,
    max_existing_learners: int = DEFAULT_MAX_EXISTING_LEARNERS,
    row_checks: bool = False,
    progress: Progress | None = None,
) -> SeedResult:
    """Load binary COPY streams into SEED_TABLES: guard, (bulk mode), COPY each, check, commit.

    ``streams`` is consumed lazily, so a generator overlaps with the load; ``seed()`` passes
    ``activity.encoded(plan)``, the benchmark passes pre-made streams (its floor).
    """
    from scripts.db.target import session

    started = time.perf_counter()
    with session(database_url) as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        url = conn.engine.url
        rows, cleared, partitions = _load(
            raw, url, streams, force, replace, max_existing_learners, row_checks, progress
        )
    return SeedResult(
        seed=None,
        rows=rows,
        cleared=cleared,
        shape={"attempts_per_partition": partitions},
        seconds=time.perf_counter() - started,
        replaced=replace,
        bulk_mode=not row_checks,
    )


def _load(
    raw: Any,
    url: Any,
    streams: Iterable[Encoded],
    force: bool,
    replace: bool,
    max_existing_learners: int,
    row_checks: bool,
    progress: Progress | None,
) -> tuple[dict[str, int], list[str], dict[str, int]]:
    """Rows loaded per table, the tables outside SEED_TABLES that ``replace`` emptied, and the
    seed window's attempts per partition of ``attempts``."""
    import io

    import psycopg2
    from psycopg2 import sql

    database = url.database or ""
    rows: dict[str, int] = dict.fromkeys(SEED_TABLES, 0)
    lo, hi = SEED_WINDOW
    try:
        with raw.cursor() as cur:
            # Two seeds at once take turns: the second then finds the first's rows (and is refused).
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (SEED_LOCK_KEY,))
            state = inspect_target(cur)
            check_target(
                state, database, force=force, replace=replace, max_existing_learners=max_existing_learners
            )
            cleared = truncate_owned(cur, SEED_TABLES, force=force) if replace else []
            default_before = _default_partition_rows(cur, lo, hi)
            foreign_keys, triggers = ([], []) if row_checks else _suspend_checks(cur)
            indexes = [] if row_checks else _suspend_indexes(cur)
            for name, columns, count, data in streams:
                if name not in rows:
                    raise SeedFailed(f"cannot seed table {name!r}: not one of {', '.join(SEED_TABLES)}")
                statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
                    sql.Identifier(name), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
                )
                cur.copy_expert(statement, io.BytesIO(data))
                rows[name] += count
                if progress:
                    progress(name, count)
            if not row_checks:
                if progress:
                    progress(FINISHING, 0)
                _restore_indexes(cur, indexes)
                _restore_checks(cur, foreign_keys, triggers, lo, hi)
            if _default_partition_rows(cur, lo, hi) != default_before:
                raise SeedFailed(
                    f"seed attempts fell into the default partition: no partition covers {lo:%Y}-{hi:%Y}",
                    "create the yearly partitions first: alp-db partitions ensure",
                )
            cur.execute(PARTITION_COUNTS, {"lo": lo, "hi": hi})
            partitions = {name: int(n) for name, n in cur.fetchall()}
        raw.commit()
    except psycopg2.Error as exc:
        lost = bool(raw.closed)  # psycopg2 marks the connection closed when the server is gone
        _rollback(raw)
        raise _describe_failure(exc, url, lost=lost) from None
    except BaseException:
        _rollback(raw)
        raise
    return rows, cleared, partitions


def _rollback(raw: Any) -> None:
    """Roll back, unless the connection is gone: then so is the transaction, and psycopg2's
    "connection already closed" would hide the error that says why."""
    import psycopg2

    if raw.closed:
        return
    with contextlib.suppress(psycopg2.InterfaceError, psycopg2.OperationalError):
        raw.rollback()


def _describe_failure(exc: BaseException, url: Any, *, lost: bool = False) -> AlpDbError:
    """One line for a failed load; nothing was committed."""
    from scripts.db import sqlstate
    from scripts.db.engine import connection_lost, first_line

    detail = first_line(exc, url, default="unknown error")
    code = sqlstate.sqlstate(exc)
    if lost or connection_lost(exc):
        return ConnectionLost(
            f"lost the connection to the database while seeding: {detail}",
            "nothing was loaded (the seed is one transaction); once the server is back, run the same"
            " command again",
        )
    if code == sqlstate.INSUFFICIENT_PRIVILEGE:  # "must be owner of table" (ALTER TABLE in bulk mode)
        return PermissionDenied(
            f"seeding needs to own the tables in bulk mode: {detail}",
            "seed as the schema owner, or pass --row-checks (slower: every check fires per row)",
        )
    if code == sqlstate.UNDEFINED_TABLE:  # an unmigrated database
        return SeedFailed(f"the schema is not there: {detail}", "migrate the database first: alp-db migrate")
    return SeedFailed(f"seeding failed, nothing was loaded: {detail}")


def _default_partition_rows(cur: Any, lo: dt.datetime, hi: dt.datetime) -> int:
    """Rows of the seed window in attempts' default partition (0 when it has none)."""
    from psycopg2 import sql

    cur.execute(
        "SELECT c.relname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partdefid"
        " WHERE p.partrelid = 'attempts'::regclass"
    )
    found = cur.fetchone()
    if not found:
        return 0
    cur.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE attempted_at >= %s AND attempted_at < %s").format(
            sql.Identifier(found[0])
        ),
        (lo, hi),
    )
    return int(cur.fetchone()[0])


def _suspend_checks(cur: Any) -> tuple[list[tuple[str, str, str]], list[Trigger]]:
    """Drop the bulk tables' foreign keys and disable the active-item triggers; return both."""
    from psycopg2 import sql

    cur.execute(
        "SELECT r.relname, c.conname, pg_get_constraintdef(c.oid)"
        " FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid"
        " WHERE c.contype = 'f' AND c.conparentid = 0"
        " AND c.conrelid = ANY (%s::regclass[]) ORDER BY 1, 2",
        (list(BULK_FOREIGN_KEY_TABLES),),
    )
    foreign_keys = [(t, n, d) for t, n, d in cur.fetchall()]
    for table, name, _ in foreign_keys:
        cur.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name))
        )
    cur.execute(TRIGGERS_OF_ATTEMPTS, (list(ACTIVE_ITEM_TRIGGERS),))
    triggers: list[Trigger] = [tuple(row) for row in cur.fetchall()]
    for schema, table, trigger, enabled in triggers:
        if enabled != "D":
            _set_trigger(cur, schema, table, trigger, "DISABLE")
    return foreign_keys, triggers


def _set_trigger(cur: Any, schema: str, table: str, trigger: str, action: str) -> None:
    from psycopg2 import sql

    cur.execute(
        sql.SQL("ALTER TABLE {} {} TRIGGER {}").format(
            sql.Identifier(schema, table), sql.SQL(action), sql.Identifier(trigger)
        )
    )


def _suspend_indexes(cur: Any) -> list[str]:
    """Drop the plain indexes of the empty BULK_INDEX_TABLES; return their definitions."""
    from psycopg2 import sql

    empty = []
    for table in BULK_INDEX_TABLES:
        cur.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table)))
        if cur.fetchone()[0]:
            empty.append(table)
    if not empty:
        return []
    # Indexes of the top-level tables only: a partitioned index takes its partitions' copies with it.
    cur.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x"
        " JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
        " WHERE t.relname = ANY (%s) AND NOT t.relispartition AND NOT x.indisunique"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
        " ORDER BY i.relname",
        (empty,),
    )
    found = cur.fetchall()
    for name, _ in found:
        cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    return [definition for _, definition in found]


def _restore_indexes(cur: Any, definitions: list[str]) -> None:
    """Rebuild the dropped indexes from the server's own CREATE INDEX text (pg_get_indexdef)."""
    from psycopg2 import sql

    if definitions:
        cur.execute("SELECT set_config('maintenance_work_mem', %s, true)", (BULK_MAINTENANCE_WORK_MEM,))
    for definition in definitions:
        # A partitioned index is rendered "ON ONLY parent" (as pg_dump attaches partitions'
        # indexes one by one); without ONLY, CREATE INDEX builds every partition's copy too.
        cur.execute(sql.SQL(ON_ONLY.sub(r"\1", definition, count=1)))


def _restore_checks(
    cur: Any,
    foreign_keys: list[tuple[str, str, str]],
    triggers: list[Trigger],
    lo: dt.datetime,
    hi: dt.datetime,
) -> None:
    """Re-add the foreign keys (validating every row) and the triggers' states, after their rule's check."""
    from psycopg2 import sql

    from scripts.db.sqltext import TRIGGER_ENABLED_CLAUSE

    cur.execute(ACTIVE_ITEM_CHECK, {"lo": lo, "hi": hi})
    bad = cur.fetchone()
    if bad:
        raise SeedFailed(f"an attempt refers to item {bad[0]}, which is not active (status: {bad[1]})")
    for schema, table, trigger, enabled in triggers:  # the parent first (see ACTIVE_ITEM_TRIGGERS)
        _set_trigger(cur, schema, table, trigger, TRIGGER_ENABLED_CLAUSE[enabled])
    for table, name, definition in foreign_keys:
        # The definition is the server's own rendering (pg_get_constraintdef), not our text.
        cur.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(sql.Identifier(table), sql.Identifier(name))
            + sql.SQL(definition)
        )
