"""``seed``: load synthetic platform data (``scripts.seed.activity``) with binary COPY, guarded.

Everything is loaded in one transaction: a seed is all there or not there at all. The target
is refused when it looks like production (ENVIRONMENT_SETTING, or more learners than
DEFAULT_MAX_EXISTING_LEARNERS) unless forced, and when it holds seed data already unless
``replace`` (TRUNCATE of SEED_TABLES and of every table that references them, in the same
transaction: ``scripts.seed.referencing``).

Bulk mode (the default; ``row_checks=False``, ``scripts.seed.bulk``) follows PostgreSQL's
"Populating a Database" (docs, section 14.4): per-row checks cost more than the load itself (a
million attempts: ~6 s in the plpgsql active-item trigger, ~8 s in foreign-key triggers,
against ~4 s for COPY), so the foreign keys, the active-item triggers and the indexes of empty
tables are taken off inside the seed's transaction and put back after the COPY, the triggers'
rule checked by one set-based query. It needs ownership of the tables; ``row_checks=True``
loads with every check firing per row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
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

# Where this seed's attempts went (the shape report): the rows this transaction inserted into
# each partition, from the server's own counters (pg_stat_xact_user_tables, free); counted
# with PARTITION_COUNTS instead when they do not add up (track_counts off).
PARTITION_INSERTS = """
    SELECT s.relid::regclass::text, s.n_tup_ins FROM pg_stat_xact_user_tables s
    WHERE s.relid IN (SELECT relid FROM pg_partition_tree('attempts') WHERE isleaf) AND s.n_tup_ins > 0
    ORDER BY 1
"""
PARTITION_COUNTS = """
    SELECT tableoid::regclass::text, count(*) FROM attempts
    WHERE attempted_at >= %(lo)s AND attempted_at < %(hi)s GROUP BY 1 ORDER BY 1
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

    from scripts.seed import bulk

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
            suspended = None if row_checks else bulk.suspend(cur)
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
            if suspended is not None:
                if progress:
                    progress(FINISHING, 0)
                bulk.restore(cur, suspended, lo, hi)
            if _default_partition_rows(cur, lo, hi) != default_before:
                raise SeedFailed(
                    f"seed attempts fell into the default partition: no partition covers {lo:%Y}-{hi:%Y}",
                    "create the yearly partitions first: alp-db partitions ensure",
                )
            partitions = _attempts_per_partition(cur, rows["attempts"], lo, hi)
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


def _attempts_per_partition(cur: Any, loaded: int, lo: dt.datetime, hi: dt.datetime) -> dict[str, int]:
    """This seed's attempts per partition: the server's counters when they account for every
    row loaded, else a count of the window's rows."""
    cur.execute(PARTITION_INSERTS)
    counted = {name: int(n) for name, n in cur.fetchall()}
    if sum(counted.values()) == loaded:
        return counted
    cur.execute(PARTITION_COUNTS, {"lo": lo, "hi": hi})
    return {name: int(n) for name, n in cur.fetchall()}
