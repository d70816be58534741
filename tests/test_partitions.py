"""Partitions of attempts: ensure, list, detach, missing-period check and the index helper."""

from __future__ import annotations

import io
import json
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool

from scripts import partitions
from scripts.checks.report import validate_migrations
from scripts.cli import main
from scripts.db.engine import make_engine
from scripts.errors import (
    ConfigError,
    DatabaseUnreachable,
    LockTimeout,
    MigrationFailed,
    NotPartitioned,
    PartitionError,
    PartitionOverlap,
    UnknownTable,
)
from scripts.partitions.period_math import parse_bound
from tests.conftest import PgServer
from tests.factories import add_attempts, make_item, make_user
from tests.polling import wait_for_sql
from tests.project import HEAD, NEXT
from tests.test_migration_checks import add_python_revision
from tests.test_migration_checks import versions as versions  # the fixture: an editable copy

YEARLY_FROM_0001 = ["attempts_2024", "attempts_2025", "attempts_2026", "attempts_2027"]


@pytest.fixture
def learner(engine: Engine) -> tuple[uuid.UUID, uuid.UUID]:
    with engine.begin() as conn:
        return make_user(conn), make_item(conn)


def partition_names(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = 'attempts'::regclass ORDER BY c.relname"
                )
            ).scalars()
        )


def bound_of(engine: Engine, name: str) -> str:
    with engine.connect() as conn:
        conn.execute(text("SET TimeZone = 'UTC'"))
        return conn.scalar(
            text("SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = :n"), {"n": name}
        )


def rows_by_partition(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                text("SELECT tableoid::regclass::text, count(*) FROM attempts GROUP BY 1 ORDER BY 1")
            ).all()
        )


def checksum(engine: Engine) -> tuple[int, str]:
    with engine.connect() as conn:
        count, digest = conn.execute(
            text("SELECT count(*), md5(coalesce(string_agg(a::text, ',' ORDER BY a.id), '')) FROM attempts a")
        ).one()
        return int(count), str(digest)


def ensure(engine: Engine, **kwargs: object) -> partitions.EnsureResult:
    with engine.connect() as conn:
        return partitions.ensure(conn, **kwargs)  # type: ignore[arg-type]


def cli_url(url: URL) -> str:
    return url.render_as_string(hide_password=False)


# ------------------------------------------------------------------ ensure


def test_ensure_twice_creates_nothing_the_second_time(engine: Engine):
    first = ensure(engine, interval="year", today=date(2029, 6, 1))
    # no rows: from today's year to one year ahead
    assert [p.name for p in first.created] == ["attempts_2029", "attempts_2030"]
    before = partition_names(engine)
    second = ensure(engine, interval="year", today=date(2029, 6, 1))
    assert second.created == []
    assert partition_names(engine) == before


def test_yearly_partitions_have_the_bounds_of_revision_0001(engine: Engine):
    ensure(engine, interval="year", ahead=0, start="2028-03-15", today=date(2028, 3, 15))
    assert bound_of(engine, "attempts_2028") == (
        "FOR VALUES FROM ('2028-01-01 00:00:00+00') TO ('2029-01-01 00:00:00+00')"
    )
    assert bound_of(engine, "attempts_2025") == (
        "FOR VALUES FROM ('2025-01-01 00:00:00+00') TO ('2026-01-01 00:00:00+00')"
    )


def test_monthly_partitions_are_named_by_year_and_month(engine: Engine):
    result = ensure(engine, interval="month", ahead=2, start="2028-01-20", today=date(2028, 2, 10))
    assert [p.name for p in result.created] == [
        "attempts_2028_01",
        "attempts_2028_02",
        "attempts_2028_03",
        "attempts_2028_04",
    ]
    assert bound_of(engine, "attempts_2028_02") == (
        "FOR VALUES FROM ('2028-02-01 00:00:00+00') TO ('2028-03-01 00:00:00+00')"
    )
    assert (
        ensure(engine, interval="month", ahead=2, start="2028-01-20", today=date(2028, 2, 10)).created == []
    )


def test_interval_defaults_to_the_shape_of_existing_partitions(engine: Engine):
    ensure(engine, interval="month", ahead=0, start="2028-01-01", today=date(2028, 1, 1))
    result = ensure(engine, ahead=1, today=date(2028, 1, 5))
    assert result.interval == "month"
    assert [p.name for p in result.created] == ["attempts_2028_02"]


def test_ensure_inside_a_callers_transaction_uses_a_savepoint_and_keeps_its_settings(engine: Engine):
    with engine.begin() as conn:  # as a revision would call it, through op.get_bind()
        conn.execute(text("SET LOCAL TimeZone = 'Asia/Tokyo'"))
        conn.execute(text("SET LOCAL lock_timeout = '7s'"))
        result = partitions.ensure(conn, interval="year", start="2030-01-01", ahead=0, today=date(2030, 1, 1))
        assert conn.execute(
            text("SELECT current_setting('TimeZone'), current_setting('lock_timeout')")
        ).one() == (
            "Asia/Tokyo",
            "7s",
        )
    assert [p.name for p in result.created] == ["attempts_2030"]
    assert "attempts_2030" in partition_names(engine)


def test_guide_statement_in_a_utc_session_and_the_manager_agree(engine: Engine):
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE attempts_2025"))
        conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
        # the migration guide's own statement, verbatim
        conn.execute(
            text(
                "CREATE TABLE attempts_2025 PARTITION OF attempts"
                " FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')"
            )
        )
    result = ensure(engine, interval="year", start="2025-01-01", ahead=0, today=date(2025, 6, 1))
    assert result.created == []


def test_guide_statement_in_a_non_utc_session_is_reported_as_an_overlap(db_url: URL, engine: Engine):
    local = create_engine(
        db_url, poolclass=NullPool, connect_args={"options": "-c TimeZone=America/New_York"}
    )
    try:
        with local.begin() as conn:
            # '2030-01-01' without an offset is New York's midnight: 05:00 UTC
            conn.execute(
                text(
                    "CREATE TABLE attempts_2030 PARTITION OF attempts"
                    " FOR VALUES FROM ('2030-01-01') TO ('2031-01-01')"
                )
            )
    finally:
        local.dispose()
    before = partition_names(engine)
    with pytest.raises(PartitionOverlap) as caught:
        ensure(engine, interval="year", start="2030-01-01", ahead=0, today=date(2030, 6, 1))
    assert (
        "overlaps existing partition attempts_2030 [2030-01-01 05:00:00+00, 2031-01-01 05:00:00+00)"
        in str(caught.value)
    )
    assert partition_names(engine) == before


def test_bounds_are_utc_midnight_whatever_the_session_timezone(db_url: URL):
    local = create_engine(
        db_url, poolclass=NullPool, connect_args={"options": "-c TimeZone=America/New_York"}
    )
    try:
        ensure(local, interval="year", start="2030-01-01", ahead=0, today=date(2030, 1, 1))
        assert bound_of(local, "attempts_2030") == (
            "FOR VALUES FROM ('2030-01-01 00:00:00+00') TO ('2031-01-01 00:00:00+00')"
        )
        with local.begin() as conn:
            user, item = make_user(conn), make_item(conn)
            add_attempts(conn, user, item, "2030-01-01 00:30:00+00")
            add_attempts(conn, user, item, "2029-12-31 23:30:00+00")
            # the session still runs in its own zone afterwards
            assert conn.scalar(text("SHOW TimeZone")) == "America/New_York"
        assert rows_by_partition(local) == {"attempts_2030": 1, "attempts_default": 1}
    finally:
        local.dispose()


def default_triggers(engine: Engine) -> dict[str, str]:
    """The user triggers of attempts_default and whether each is enabled (pg_trigger.tgenabled)."""
    with engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    "SELECT tgname, tgenabled FROM pg_trigger"
                    " WHERE tgrelid = 'attempts_default'::regclass AND NOT tgisinternal"
                )
            ).all()
        )


def test_default_partition_rows_move_into_new_partition(engine: Engine, learner):
    user, item = learner
    with engine.begin() as conn:
        add_attempts(conn, user, item, "2029-03-01 00:00:00+00", 300)
        add_attempts(conn, user, item, "2030-12-31 20:00:00+00", 10)  # crosses into 2031
        add_attempts(conn, user, item, "2034-05-01 00:00:00+00", 7)  # no partition asked for
        add_attempts(conn, user, item, "2025-05-01 00:00:00+00", 5)
        # retired since: a re-insert would fail the BEFORE INSERT trigger; a move must not
        conn.execute(text("UPDATE items SET status = 'retired' WHERE id = :i"), {"i": item})
    before = checksum(engine)
    triggers_before = default_triggers(engine)
    assert "trg_attempts_append_only" in triggers_before  # the trigger the move must not fire
    assert rows_by_partition(engine)["attempts_default"] == 317

    result = ensure(engine, interval="year", ahead=1, today=date(2030, 2, 1))

    # from the earliest row (attempts_2025's) on: 2028 is created too, empty
    assert [p.name for p in result.created] == [
        "attempts_2028",
        "attempts_2029",
        "attempts_2030",
        "attempts_2031",
    ]
    assert result.moved_rows == {
        "attempts_2028": 0,
        "attempts_2029": 300,
        "attempts_2030": 4,
        "attempts_2031": 6,
    }
    assert checksum(engine) == before
    assert rows_by_partition(engine) == {
        "attempts_2025": 5,
        "attempts_2029": 300,
        "attempts_2030": 4,
        "attempts_2031": 6,
        "attempts_default": 7,
    }
    with engine.connect() as conn:
        in_default = conn.scalar(
            text("SELECT count(*) FROM ONLY attempts_default WHERE attempted_at < '2032-01-01 00:00:00+00'")
        )
    assert in_default == 0
    assert default_triggers(engine) == triggers_before  # switched off for the move, then back as they were


def vacuum_count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT pg_stat_get_vacuum_count(CAST(:t AS regclass))"), {"t": table}))


def test_ensure_vacuums_what_the_move_left_dead_in_the_default_partition_and_nothing_else(
    engine: Engine, learner
):
    # the ATTACH step scans the default partition while writers wait: the pages the moved rows
    # left dead must be vacuumed first, or that step grows with the rows moved
    user, item = learner
    with engine.begin() as conn:
        add_attempts(conn, user, item, "2029-03-01 00:00:00+00", 50)
    before = vacuum_count(engine, "attempts_default")
    with engine.connect() as conn:
        ensure_result = partitions.ensure(
            conn, interval="year", ahead=0, start="2029-01-01", today=date(2029, 6, 1)
        )
        # the connection is back to its own isolation level: a transaction still rolls back
        conn.execute(text("CREATE TABLE left_behind ()"))
        conn.rollback()
    assert ensure_result.moved_rows == {"attempts_2029": 50}
    assert vacuum_count(engine, "attempts_default") == before + 1
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT to_regclass('left_behind')")) is None
    # a run with nothing to move does not vacuum
    ensure(engine, interval="year", ahead=0, start="2030-01-01", today=date(2030, 6, 1))
    assert vacuum_count(engine, "attempts_default") == before + 1


def trigger_setup(conn: Connection, table: str) -> set[tuple[object, ...]]:
    """A partition's user triggers: name, enabled state, kind and function, and whether a clone."""
    return set(
        conn.execute(
            text(
                "SELECT tgname, tgenabled, tgtype, tgfoid::regproc::text, tgparentid <> 0,"
                " tgnewtable FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) AND NOT tgisinternal"
            ),
            {"t": table},
        ).all()
    )


def newest_range_partition_before(conn: Connection, before: str) -> str:
    names = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'attempts'::regclass"
        )
    ).all()
    ranges = [parse_bound(name, bound) for name, bound in names if bound != "DEFAULT"]
    start = datetime.fromisoformat(before).replace(tzinfo=timezone.utc)
    return max((p for p in ranges if p.start and p.start < start), key=lambda p: p.start).name  # type: ignore[arg-type,return-value]


def test_new_partition_gets_what_revisions_set_up_on_every_partition(engine: Engine, learner):
    # a statement trigger created on each partition and a clone switched off on each (as a
    # revision like 0005 does): ATTACH copies neither, ensure must
    user, item = learner
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE insert_statements (tbl text, n bigint)"))
        conn.execute(
            text(
                "CREATE FUNCTION count_inserts() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " INSERT INTO insert_statements SELECT TG_TABLE_NAME, count(*) FROM new_rows;"
                " RETURN NULL; END $$"
            )
        )
        existing = (
            conn.execute(
                text(
                    "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'attempts'::regclass"
                )
            )
            .scalars()
            .all()
        )
        clone = conn.execute(
            text(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:p AS regclass) AND tgparentid <> 0"
                " AND NOT tgisinternal"
                " AND tgname <> 'trg_attempts_append_only' ORDER BY tgname LIMIT 1"
            ),
            {"p": existing[0]},
        ).scalar_one_or_none()
        for part in existing:
            conn.execute(
                text(
                    f"CREATE TRIGGER trg_count_inserts AFTER INSERT ON {part} REFERENCING NEW TABLE AS"
                    " new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_inserts()"
                )
            )
            conn.execute(text(f"ALTER TABLE {part} DISABLE TRIGGER trg_count_inserts"))
            conn.execute(text(f"ALTER TABLE {part} ENABLE ALWAYS TRIGGER trg_count_inserts"))
            if clone is not None:
                conn.execute(text(f'ALTER TABLE {part} DISABLE TRIGGER "{clone}"'))
        add_attempts(conn, user, item, "2030-02-01 00:00:00+00", 2)  # moved, then attached
    ensure(engine, interval="year", ahead=0, start="2030-01-01", today=date(2030, 1, 1))
    with engine.begin() as conn:
        assert trigger_setup(conn, "attempts_2030") == trigger_setup(
            conn, newest_range_partition_before(conn, "2030-01-01")
        )
        new = {(name, enabled) for name, enabled, *_ in trigger_setup(conn, "attempts_2030")}
        assert ("trg_count_inserts", "A") in new
        assert conn.scalar(text("SELECT count(*) FROM insert_statements")) == 0  # the move fired nothing
        conn.execute(
            text(
                "INSERT INTO attempts_2030"
                " (user_id, item_id, attempted_at, is_correct, score, response_time_ms)"
                " VALUES (:u, :i, '2030-03-01 00:00:00+00', true, 1, 10)"
            ),
            {"u": user, "i": item},
        )
        assert conn.execute(text("SELECT tbl, n FROM insert_statements")).all() == [("attempts_2030", 1)]


def test_ensure_pauses_after_each_batch_in_proportion_to_it_and_not_inside_a_transaction(
    engine: Engine, learner, monkeypatch: pytest.MonkeyPatch
):
    import scripts.partitions.ensure_run as ensure_run

    pauses: list[float] = []
    monkeypatch.setattr(ensure_run.time, "sleep", pauses.append)
    user, item = learner
    with engine.begin() as conn:
        add_attempts(conn, user, item, "2029-03-01 00:00:00+00", 25)
        add_attempts(conn, user, item, "2031-03-01 00:00:00+00", 25)
    result = ensure(
        engine, interval="year", ahead=0, start="2029-01-01", today=date(2029, 6, 1), batch_rows=10
    )
    assert result.batches == 3 and len(pauses) == 3 and all(p > 0 for p in pauses)
    pauses.clear()
    ensure(engine, interval="year", ahead=0, start="2030-01-01", today=date(2030, 6, 1), pause_ratio=0)
    assert pauses == []
    with engine.begin() as conn:  # a revision's ensure is one transaction: pausing would hold its locks
        done = partitions.ensure(conn, interval="year", ahead=0, start="2031-01-01", today=date(2031, 6, 1))
    assert done.batches == 1 and pauses == []


def test_new_partitions_carry_the_parents_indexes_constraints_and_triggers(engine: Engine, learner):
    user, item = learner
    with engine.begin() as conn:
        add_attempts(conn, user, item, "2030-02-01 00:00:00+00", 3)  # moved rows, then attached
    ensure(engine, interval="year", ahead=0, start="2030-01-01", today=date(2030, 1, 1))
    with engine.connect() as conn:
        parent_indexes = set(
            conn.execute(
                text("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'attempts'::regclass")
            ).scalars()
        )
        attached = set(
            conn.execute(
                text(
                    "SELECT i.inhparent::regclass::text FROM pg_inherits i JOIN pg_index x"
                    " ON x.indexrelid = i.inhrelid"
                    " WHERE x.indrelid = 'attempts_2030'::regclass AND x.indisvalid"
                )
            ).scalars()
        )
        constraints = set(
            conn.execute(
                text("SELECT conname FROM pg_constraint WHERE conrelid = 'attempts_2030'::regclass")
            ).scalars()
        )
        triggers = trigger_setup(conn, "attempts_2030")
        sibling = trigger_setup(conn, newest_range_partition_before(conn, "2030-01-01"))
    assert attached == parent_indexes
    assert {
        "ck_attempts_score_range",
        "ck_attempts_response_time_non_negative",
        "fk_attempts_user_id_users",
        "fk_attempts_item_id_items",
        "fk_attempts_session_id_learning_sessions",
    } <= constraints
    assert "trg_attempts_append_only" in {name for name, *_ in triggers}
    assert triggers == sibling  # every trigger, enabled or not, as on the partition before it
    with engine.connect() as conn, pytest.raises(IntegrityError, match="ck_attempts_score_range"):
        conn.execute(
            text(
                "INSERT INTO attempts_2030"
                " (user_id, item_id, attempted_at, is_correct, score, response_time_ms)"
                " VALUES (:u, :i, '2030-03-01 00:00:00+00', true, 1.5, 10)"
            ),
            {"u": user, "i": item},
        )
    with engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
        conn.execute(text("UPDATE attempts SET score = 0 WHERE attempted_at >= '2030-01-01 00:00:00+00'"))


def test_concurrent_inserts_during_ensure_all_succeed(db_url: URL, engine: Engine, learner):
    user, item = learner
    stop = threading.Event()
    errors: list[BaseException] = []
    inserted = [0] * 4
    started = [threading.Event() for _ in inserted]
    after_ensure = [threading.Event() for _ in inserted]
    ensure_done = threading.Event()
    # every inserter writes into the year being created, one also into a year that exists
    instants = ["2030-04-01 00:00:00+00", "2030-08-01 00:00:00+00", "2031-01-01 00:00:00+00", "2026-06-01"]

    def inserter(k: int) -> None:
        own = make_engine(db_url)
        try:
            while not stop.is_set():
                with own.begin() as conn:
                    add_attempts(conn, user, item, instants[k])
                inserted[k] += 1
                started[k].set()
                if ensure_done.is_set():
                    after_ensure[k].set()
        except BaseException as exc:
            errors.append(exc)
            started[k].set()
            after_ensure[k].set()
        finally:
            own.dispose()

    threads = [threading.Thread(target=inserter, args=(k,)) for k in range(len(inserted))]
    for thread in threads:
        thread.start()
    try:
        for event in started:
            assert event.wait(60)
        result = ensure(
            engine, interval="year", ahead=1, start="2030-01-01", today=date(2030, 2, 1), lock_timeout="200ms"
        )
        ensure_done.set()
        for event in after_ensure:
            assert event.wait(60)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert [p.name for p in result.created] == ["attempts_2030", "attempts_2031"]
    counts = rows_by_partition(engine)
    assert sum(counts.values()) == sum(inserted)
    assert counts["attempts_2030"] == inserted[0] + inserted[1]
    assert counts["attempts_2031"] == inserted[2]
    assert "attempts_default" not in counts


def wait_for_lock_waiter(engine: Engine, relation: str) -> None:
    """Poll pg_locks until some backend waits for a lock on ``relation``."""
    wait_for_sql(
        engine,
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
        " WHERE NOT l.granted AND c.relname = :r",
        {"r": relation},
    )


# The longest a writer may wait on one lock while ensure moves rows. Enforced by the server:
# the writer runs with this lock_timeout, so any longer wait fails its statement (55P03) and
# the test with it. Ten times ensure's own lock_timeout, so a loaded machine does not matter;
# the old one-transaction move held users and attempts for the whole move of 100k rows.
WRITER_LOCK_BOUND = "1s"
MOVED_ROWS = 100_000


def range_checksum(engine: Engine, lo: str, hi: str) -> tuple[int, str]:
    """Count and md5 of the ordered rows of [lo, hi) as seen through the parent."""
    with engine.connect() as conn:
        count, digest = conn.execute(
            text(
                "SELECT count(*), md5(coalesce(string_agg(a::text, ',' ORDER BY a.id), '')) FROM attempts a"
                " WHERE attempted_at >= CAST(:lo AS timestamptz) AND attempted_at < CAST(:hi AS timestamptz)"
            ),
            {"lo": lo, "hi": hi},
        ).one()
        return int(count), str(digest)


def test_ensure_moves_100k_default_rows_while_a_writer_never_waits_beyond_the_bound(
    db_url: URL, engine: Engine, learner
):
    user, item = learner
    with engine.begin() as conn:
        # seeding only: skip the per-row triggers (the learner and item exist; the test cluster's
        # role is a superuser), which would make this setup most of the test's time
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(
            text(
                "INSERT INTO attempts (user_id, item_id, attempted_at, is_correct, score, response_time_ms)"
                " SELECT :u, :i, '2030-01-01 00:00:00+00'::timestamptz + n * interval '5 minutes',"
                " n % 2 = 0, (n % 10) / 10.0, 1000 + n % 5000 FROM generate_series(0, :c - 1) AS n"
            ),
            {"u": user, "i": item, "c": MOVED_ROWS},
        )
    before = range_checksum(engine, "2030-01-01 00:00:00+00", "2031-01-01 00:00:00+00")
    assert before[0] == MOVED_ROWS
    assert rows_by_partition(engine) == {"attempts_default": MOVED_ROWS}

    stop = threading.Event()
    done = threading.Condition()
    writes = [0]
    errors: list[BaseException] = []

    def writer() -> None:
        """The platform's traffic: a current attempt and a user update, one transaction each time."""
        own = make_engine(db_url, session_settings={"lock_timeout": WRITER_LOCK_BOUND})
        try:
            while not stop.is_set():
                with own.begin() as conn:
                    add_attempts(conn, user, item, "now")
                    conn.execute(text("UPDATE users SET ability = ability WHERE id = :u"), {"u": user})
                with done:
                    writes[0] += 1
                    done.notify_all()
        except BaseException as exc:
            errors.append(exc)
            with done:
                done.notify_all()
        finally:
            own.dispose()

    def writer_wrote_since(seen: int) -> int:
        with done:
            assert done.wait_for(lambda: writes[0] > seen or bool(errors), timeout=60), "the writer stalled"
            return writes[0]

    progress: list[int] = []

    def after_batch(partition: str, moved: int) -> None:
        # each batch has committed: the writer must get through a write before the next one,
        # so the writes are interleaved with the move, not merely before or after it
        progress.append(moved)
        writer_wrote_since(writes[0])

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        writer_wrote_since(0)
        result = ensure(
            engine,
            interval="year",
            ahead=0,
            start="2030-01-01",
            today=date(2030, 1, 1),
            batch_rows=10_000,
            on_batch=after_batch,
        )
        writer_wrote_since(writes[0])  # and it still writes afterwards
    finally:
        stop.set()
        thread.join()
    assert errors == [], f"the writer waited longer than {WRITER_LOCK_BOUND} on a lock: {errors[0]}"
    assert result.moved_rows == {"attempts_2030": MOVED_ROWS}
    assert progress == list(range(10_000, MOVED_ROWS + 1, 10_000))
    assert range_checksum(engine, "2030-01-01 00:00:00+00", "2031-01-01 00:00:00+00") == before
    counts = rows_by_partition(engine)
    assert counts["attempts_2030"] == MOVED_ROWS
    assert "attempts_default" not in counts
    assert counts[f"attempts_{date.today().year}"] == writes[0]
    with engine.connect() as conn:
        left = conn.scalar(
            text(
                "SELECT count(*) FROM pg_constraint"
                " WHERE conrelid = 'attempts_2030'::regclass AND conname = 'alp_db_ensure_bounds'"
            )
        )
    assert left == 0  # the CHECK that proved the bounds is gone once attached


def test_insert_queued_behind_ensure_lands_in_the_new_partition(engine: Engine, learner):
    user, item = learner
    reader = engine.connect()
    reader.execute(text("SELECT count(*) FROM attempts"))  # holds ACCESS SHARE on every partition
    outcome: dict[str, object] = {}

    def run_ensure() -> None:
        # a long lock wait: ensure must still be waiting for the reader when the insert queues
        outcome["ensure"] = ensure(
            engine, interval="year", ahead=0, start="2030-01-01", today=date(2030, 1, 1), lock_timeout="60s"
        )

    def insert_2030() -> None:
        with engine.begin() as conn:
            add_attempts(conn, user, item, "2030-05-05 00:00:00+00")
        outcome["insert"] = "ok"

    ensure_thread = threading.Thread(target=run_ensure)
    insert_thread = threading.Thread(target=insert_2030)
    try:
        ensure_thread.start()
        wait_for_lock_waiter(engine, "attempts_default")  # ensure holds the parent, waits for the reader
        insert_thread.start()
        wait_for_lock_waiter(engine, "attempts")  # the insert queues behind ensure, before routing
    finally:
        reader.rollback()  # the reader ends: ensure proceeds, the insert waits for its commit
        reader.close()
        ensure_thread.join()
        insert_thread.join()
    assert outcome.get("insert") == "ok"
    assert rows_by_partition(engine) == {"attempts_2030": 1}


def test_app_transaction_holding_users_only_delays_ensure_and_its_row_lands_in_the_new_partition(
    engine: Engine, learner
):
    """An app transaction writes users then attempts while ensure waits for users (to add the
    new table's foreign keys): ensure holds nothing on attempts meanwhile, so there is no lock
    cycle; the app commits, and ensure moves its row into the new partition."""
    _, item = learner
    app = engine.connect()  # SQLAlchemy begins its transaction with the first statement
    new_user = make_user(app, "newcomer@example.com")  # holds ROW EXCLUSIVE on users
    outcome: dict[str, object] = {}

    def run_ensure() -> None:
        outcome["ensure"] = ensure(
            engine, interval="year", ahead=0, start="2030-01-01", today=date(2030, 1, 1), retries=50
        )

    ensure_thread = threading.Thread(target=run_ensure)
    try:
        ensure_thread.start()
        wait_for_lock_waiter(engine, "users")  # ensure's ADD FOREIGN KEY waits for the app
        add_attempts(app, new_user, item, "2030-03-01 00:00:00+00")  # lands in the default: no wait
        app.commit()
    finally:
        app.close()
        ensure_thread.join()
    result = outcome["ensure"]
    assert isinstance(result, partitions.EnsureResult)
    assert [p.name for p in result.created] == ["attempts_2030"]
    assert rows_by_partition(engine) == {"attempts_2030": 1}  # moved out of the default


@pytest.fixture
def blocker(engine: Engine) -> Iterator[Connection]:
    """A reader holding ACCESS SHARE on attempts_default (and so blocking ATTACH) until released."""
    conn = engine.connect()
    conn.execute(text("SELECT count(*) FROM attempts_default"))
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


def test_ensure_retries_after_a_lock_timeout_and_then_succeeds(engine: Engine, blocker: Connection):
    retries: list[int] = []

    def release(attempt: int) -> None:
        retries.append(attempt)
        blocker.rollback()

    result = ensure(
        engine,
        interval="year",
        ahead=0,
        start="2030-01-01",
        today=date(2030, 1, 1),
        lock_timeout="50ms",
        on_retry=release,
    )
    assert retries == [1]
    assert result.lock_retries == 1
    assert [p.name for p in result.created] == ["attempts_2030"]


def test_ensure_gives_up_with_a_lock_timeout_says_what_is_left_and_a_rerun_finishes(
    engine: Engine, blocker: Connection
):
    before = partition_names(engine)
    with pytest.raises(LockTimeout) as caught:
        ensure(
            engine,
            interval="year",
            ahead=0,
            start="2030-01-01",
            today=date(2030, 1, 1),
            lock_timeout="50ms",
            retries=1,
        )
    assert str(caught.value) == (
        "lock timeout: ensure of attempts_2030: ATTACH waited 50ms for a lock 2 times; another session"
        " holds it — find it in pg_stat_activity / pg_locks, then retry, or raise --lock-timeout;"
        " attempts_2030 exists (empty, not yet a partition); run"
        " `alp-db partitions ensure --table attempts --interval year --start 2030-01-01` again to finish"
    )
    assert partition_names(engine) == before
    blocker.rollback()
    result = ensure(engine, interval="year", ahead=0, start="2030-01-01", today=date(2030, 1, 1))
    assert [p.name for p in result.created] == ["attempts_2030"]
    assert result.resumed == ["attempts_2030"]
    assert "attempts_2030" in partition_names(engine)


def terminate(engine: Engine, pid: int) -> None:
    """End one backend as a server restart does, for its client (SQLSTATE 57P01)."""
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid})


def test_lost_connection_during_ensure_is_one_line_and_the_same_command_resumes(engine: Engine, learner):
    user, item = learner
    with engine.begin() as conn:
        add_attempts(conn, user, item, "2030-01-01 00:00:00+00", 30)
    before = range_checksum(engine, "2030-01-01 00:00:00+00", "2031-01-01 00:00:00+00")
    with engine.connect() as conn:
        pid = conn.scalar(text("SELECT pg_backend_pid()"))
        conn.commit()
        with pytest.raises(DatabaseUnreachable) as caught:
            partitions.ensure(
                conn,
                interval="year",
                ahead=0,
                start="2030-01-01",
                today=date(2030, 1, 1),
                batch_rows=10,
                on_batch=lambda partition, moved: terminate(engine, pid),
            )
    message = str(caught.value)
    assert "\n" not in message
    # libpq's first line is either the server's FATAL message or its own account of the loss
    assert re.match(
        "lost the connection to the database during ensure of attempts_2030:"
        " (terminating connection due to administrator command|server closed the connection unexpectedly)"
        " — attempts_2030 exists, not yet a partition of attempts, holding 10 row[(]s[)] moved out of"
        " attempts_default",
        message,
    ), message
    assert message.endswith(
        "run `alp-db partitions ensure --table attempts --interval year --start 2030-01-01` again to"
        " finish, once the server is back"
    )
    result = ensure(engine, interval="year", ahead=0, start="2030-01-01", today=date(2030, 1, 1))
    assert result.resumed == ["attempts_2030"]
    assert result.moved_rows == {"attempts_2030": 30}
    assert rows_by_partition(engine) == {"attempts_2030": 30}
    assert range_checksum(engine, "2030-01-01 00:00:00+00", "2031-01-01 00:00:00+00") == before


def test_lost_connection_during_detach_is_one_line_exit_2_and_says_how_to_resume(
    db_url: URL, engine: Engine, learner
):
    fill_years(engine, *learner)
    reader = engine.connect()
    reader.execute(text("SELECT count(*) FROM attempts"))  # DETACH waits for this reader
    outcome: dict[str, object] = {}

    args = ["partitions", "detach", "--older-than", "2025-01-01", "--database-url", cli_url(db_url)]

    def run() -> None:
        outcome["cli"] = CliRunner().invoke(main, [*args, "--lock-timeout", "60s"])

    thread = threading.Thread(target=run)
    try:
        thread.start()
        wait_for_lock_waiter(engine, "attempts")
        with engine.connect() as conn:
            waiter = conn.scalar(
                text(
                    "SELECT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                    " WHERE NOT l.granted AND c.relname = 'attempts'"
                )
            )
        terminate(engine, waiter)
        thread.join()
    finally:
        reader.rollback()
        reader.close()
    result = outcome["cli"]
    assert isinstance(result, Result)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(
        "alp-db: error: lost the connection to the database during ALTER TABLE public.attempts DETACH"
        " PARTITION public.attempts_2024:"
        " (terminating connection due to administrator command|server closed the connection unexpectedly)"
        " — nothing of that step was kept; once the server is back, run the same command again:"
        " it resumes where this one stopped",
        lines[0],
    ), lines[0]
    assert "attempts_2024" in partition_names(engine)
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "attempts_2024" not in partition_names(engine)


# ------------------------------------------------------------------ errors


def test_monthly_range_inside_an_existing_yearly_partition_is_refused_and_nothing_changes(engine: Engine):
    before = partition_names(engine)
    with pytest.raises(PartitionOverlap) as caught:
        ensure(engine, interval="month", start="2027-11-01", ahead=2, today=date(2027, 11, 1))
    assert str(caught.value).startswith(
        "cannot create attempts_2027_11 [2027-11-01 00:00:00+00, 2027-12-01 00:00:00+00): it overlaps"
        " existing partition attempts_2027 [2027-01-01 00:00:00+00, 2028-01-01 00:00:00+00)"
    )
    assert "use --interval year" in str(caught.value)
    assert partition_names(engine) == before


def test_partition_name_taken_by_another_table_is_refused(engine: Engine):
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE attempts_2030 (id int)"))
    before = partition_names(engine)
    with pytest.raises(PartitionOverlap, match="a relation of that name exists and is not a partition"):
        ensure(engine, interval="year", start="2028-01-01", ahead=0, today=date(2030, 1, 1))
    assert partition_names(engine) == before  # 2028 and 2029 were not created either


def test_stray_ancient_row_in_the_default_partition_does_not_start_a_flood_of_partitions(
    engine: Engine, learner
):
    with engine.begin() as conn:
        add_attempts(conn, *learner, "1970-01-01 00:00:00+00")  # a device with its clock unset
    before = partition_names(engine)
    with pytest.raises(ConfigError) as caught:
        ensure(engine, interval="month", today=date(2028, 1, 1))
    assert str(caught.value) == (
        "ensure would span 700 month partitions from 1970-01-01 (over 120)"
        " — pass --start to begin later, or look for stray rows in the default partition"
    )
    assert partition_names(engine) == before


def test_schema_qualified_table_name_is_accepted(engine: Engine):
    result = ensure(
        engine, table="public.attempts", interval="year", start="2030-01-01", ahead=0, today=date(2030, 1, 1)
    )
    assert [p.name for p in result.created] == ["attempts_2030"]


def test_unknown_table_is_refused(engine: Engine):
    with engine.connect() as conn, pytest.raises(UnknownTable, match="table 'attempt' does not exist"):
        partitions.ensure(conn, "attempt")
    with engine.connect() as conn, pytest.raises(UnknownTable):
        partitions.list_partitions(conn, "no_such; DROP TABLE users")


def test_table_that_is_not_partitioned_is_refused(engine: Engine):
    with engine.connect() as conn, pytest.raises(NotPartitioned, match="table 'users' is not partitioned"):
        partitions.ensure(conn, "users")
    with engine.connect() as conn, pytest.raises(NotPartitioned):
        partitions.plan_detach(conn, "users", "2025-01-01")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "2025-13-01"}, "--start '2025-13-01' is not a date"),
        ({"start": "last year"}, "--start 'last year' is not a date"),
        ({"interval": "week"}, "interval 'week' is not known"),
        ({"ahead": -1}, "--ahead -1 is negative"),
        ({"lock_timeout": "soon"}, "lock_timeout 'soon' is not a duration"),
        ({"pause_ratio": -0.5}, "pause ratio -0.5 is negative"),
        ({"batch_rows": 0}, "batch size 0 is not positive"),
    ],
)
def test_malformed_ensure_input_is_refused(engine: Engine, kwargs: dict[str, object], message: str):
    before = partition_names(engine)
    with pytest.raises(ConfigError) as caught:
        ensure(engine, **kwargs)
    assert str(caught.value).startswith(message)
    assert partition_names(engine) == before


def test_bad_older_than_date_is_refused(engine: Engine):
    with (
        engine.connect() as conn,
        pytest.raises(ConfigError, match="--older-than '2025/01/01' is not a date"),
    ):
        partitions.plan_detach(conn, "attempts", "2025/01/01")


# ------------------------------------------------------------------ list and missing


def test_list_shows_bounds_rows_size_and_flags_rows_in_the_default_partition(engine: Engine, learner):
    user, item = learner
    with engine.begin() as conn:
        add_attempts(conn, user, item, "2025-03-01 00:00:00+00", 20)
        add_attempts(conn, user, item, "2033-07-01 00:00:00+00", 2)
        conn.execute(text("ANALYZE attempts"))
    with engine.connect() as conn:
        listing = partitions.list_partitions(conn)
    names = [p.name for p in listing.partitions]
    assert names == [*YEARLY_FROM_0001, "attempts_default"]
    by_name = {p.name: p for p in listing.partitions}
    assert by_name["attempts_2025"].estimated_rows == 20
    assert by_name["attempts_2025"].as_json()["from"] == "2025-01-01 00:00:00+00"
    assert by_name["attempts_2025"].size_bytes > 0
    assert listing.default_rows == 2
    assert listing.warning is not None
    assert listing.warning.startswith(
        "2 row(s) in default partition attempts_default (2033-07-01 00:00:00+00"
    )
    assert "--start 2033-07-01" in listing.warning


def test_missing_partitions_names_the_current_or_next_period_without_one(engine: Engine):
    with engine.connect() as conn:
        assert partitions.missing_partitions(conn, "attempts", "year", at=date(2026, 3, 1)) == []
        missing = partitions.missing_partitions(conn, "attempts", "year", at=date(2027, 6, 1))
        assert [p.name for p in missing] == ["attempts_2028"]
        monthly = partitions.missing_partitions(conn, "attempts", "month", at=date(2027, 12, 15))
        assert [p.name for p in monthly] == ["attempts_2028_01"]  # December is inside attempts_2027
        assert [p.name for p in partitions.missing_partitions(conn, at=date(2031, 1, 1))] == [
            "attempts_2031",
            "attempts_2032",
        ]


# ------------------------------------------------------------------ detach


def fill_years(engine: Engine, user: uuid.UUID, item: uuid.UUID) -> None:
    with engine.begin() as conn:
        for year in (2024, 2025, 2026):
            add_attempts(conn, user, item, f"{year}-06-01 00:00:00+00", 10)


def test_detach_takes_old_partitions_out_and_queries_on_recent_data_still_work(engine: Engine, learner):
    user, item = learner
    fill_years(engine, user, item)
    with engine.connect() as conn:
        plan = partitions.plan_detach(conn, "attempts", "2026-01-01")
        partitions.apply_detach(conn, plan)
    assert [p.name for p in plan.partitions] == ["attempts_2024", "attempts_2025"]
    assert rows_by_partition(engine) == {"attempts_2026": 10}
    with engine.connect() as conn:
        recent = conn.scalar(
            text(
                "SELECT count(*) FROM attempts"
                " WHERE user_id = :u AND attempted_at >= '2026-01-01 00:00:00+00'"
            ),
            {"u": user},
        )
        kept = conn.scalar(text("SELECT count(*) FROM attempts_2024"))  # detached, not dropped
    assert recent == 10
    assert kept == 10
    with engine.begin() as conn:  # new rows still go in, old ones now land in the default
        add_attempts(conn, user, item, "2026-07-01 00:00:00+00")
        add_attempts(conn, user, item, "2024-07-01 00:00:00+00")
    assert rows_by_partition(engine) == {"attempts_2026": 11, "attempts_default": 1}


def test_detach_with_drop_removes_the_tables(engine: Engine, learner):
    fill_years(engine, *learner)
    with engine.connect() as conn:
        plan = partitions.plan_detach(conn, "attempts", "2025-01-01", drop=True)
        result = partitions.apply_detach(conn, plan)
        gone = conn.scalar(text("SELECT to_regclass('attempts_2024') IS NULL"))
    assert result.executed == list(plan.statements)
    assert plan.statements[-1] == "DROP TABLE public.attempts_2024"
    assert gone


def test_detach_dry_run_changes_nothing_and_lists_exactly_what_detach_does(
    db_url: URL, engine: Engine, learner
):
    fill_years(engine, *learner)
    before = partition_names(engine)
    runner = CliRunner()
    args = ["partitions", "detach", "--older-than", "2026-01-01", "--drop", "--database-url", cli_url(db_url)]
    dry = runner.invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert partition_names(engine) == before
    done = runner.invoke(main, args)
    assert done.exit_code == 0, done.output
    planned = [line.removeprefix("would run: ") for line in dry.stdout.splitlines()]
    executed = [line.removeprefix("ran: ") for line in done.stdout.splitlines()]
    assert (
        planned
        == executed
        == [
            "ALTER TABLE public.attempts DETACH PARTITION public.attempts_2024;",
            "DROP TABLE public.attempts_2024;",
            "ALTER TABLE public.attempts DETACH PARTITION public.attempts_2025;",
            "DROP TABLE public.attempts_2025;",
        ]
    )
    assert partition_names(engine) == ["attempts_2026", "attempts_2027", "attempts_default"]


def test_detach_of_a_stale_plan_stops_with_one_line_and_keeps_what_ran(engine: Engine):
    with engine.connect() as conn:
        plan = partitions.plan_detach(conn, "attempts", "2026-01-01")
    with engine.begin() as conn:  # someone else takes attempts_2025 out meanwhile
        conn.execute(text("ALTER TABLE attempts DETACH PARTITION attempts_2025"))
    with engine.connect() as conn, pytest.raises(PartitionError) as caught:
        partitions.apply_detach(conn, plan)
    assert str(caught.value).startswith(
        "ALTER TABLE public.attempts DETACH PARTITION public.attempts_2025 failed:"
        ' relation "attempts_2025" is not a partition of relation "attempts"'
    )
    assert "attempts_2024" not in partition_names(engine)  # the first statement had run


def test_detach_never_takes_the_default_partition(engine: Engine):
    with engine.connect() as conn:
        plan = partitions.plan_detach(conn, "attempts", "2100-01-01")
        partitions.apply_detach(conn, plan)
    assert [p.name for p in plan.partitions] == YEARLY_FROM_0001
    assert plan.why_not_concurrently == "attempts has a default partition (attempts_default)"
    assert partition_names(engine) == ["attempts_default"]


def test_detach_is_concurrent_where_the_server_allows_it(engine: Engine):
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE attempts DETACH PARTITION attempts_default"))
        version = partitions.server_version(conn)
    with engine.connect() as conn:
        plan = partitions.plan_detach(conn, "attempts", "2025-01-01")
        partitions.apply_detach(conn, plan)
    expected = "ALTER TABLE public.attempts DETACH PARTITION public.attempts_2024"
    if version >= partitions.CONCURRENT_DETACH_MIN_VERSION:
        assert plan.concurrently
        expected += " CONCURRENTLY"
    assert plan.statements == (expected,)
    assert "attempts_2024" not in partition_names(engine)


def test_interrupted_concurrent_detach_is_finished_by_the_retry(engine: Engine):
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE attempts DETACH PARTITION attempts_default"))
        version = partitions.server_version(conn)
    if version < partitions.CONCURRENT_DETACH_MIN_VERSION:
        pytest.skip("DETACH ... CONCURRENTLY needs PostgreSQL 14")
    reader = engine.connect()
    reader.execute(text("SELECT count(*) FROM attempts"))  # a query that still sees attempts_2024
    retries: list[int] = []

    def release(attempt: int) -> None:
        retries.append(attempt)
        reader.rollback()

    try:
        with engine.connect() as conn:
            plan = partitions.plan_detach(conn, "attempts", "2025-01-01")
            result = partitions.apply_detach(conn, plan, lock_timeout="50ms", on_retry=release)
    finally:
        reader.close()
    assert retries == [1]
    assert plan.statements == (
        "ALTER TABLE public.attempts DETACH PARTITION public.attempts_2024 CONCURRENTLY",
    )
    # the first attempt's second transaction timed out waiting for the reader; the retry finished it
    assert result.executed == ["ALTER TABLE public.attempts DETACH PARTITION public.attempts_2024 FINALIZE"]
    assert "attempts_2024" not in partition_names(engine)


# ------------------------------------------------------------------ the index helper


def index_state(engine: Engine, name: str) -> tuple[bool, dict[str, bool]]:
    """(parent index valid?, {partition: its attached index valid?})."""
    with engine.connect() as conn:
        parent_valid = conn.scalar(
            text("SELECT indisvalid FROM pg_index WHERE indexrelid = CAST(:n AS regclass)"), {"n": name}
        )
        children = dict(
            conn.execute(
                text(
                    "SELECT x.indrelid::regclass::text, x.indisvalid FROM pg_inherits i"
                    " JOIN pg_index x ON x.indexrelid = i.inhrelid WHERE i.inhparent = CAST(:n AS regclass)"
                ),
                {"n": name},
            ).all()
        )
    return bool(parent_valid), children


def test_partitioned_index_helper_yields_a_valid_index_on_every_partition(engine: Engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn)
        with ctx.begin_transaction():
            partitions.create_partitioned_index_concurrently(
                Operations(ctx),
                "ix_attempts_score_desc",
                ["score DESC", "attempted_at"],
                where="score > '0.5'::double precision",  # a cast: colons must survive text()
            )
    valid, children = index_state(engine, "ix_attempts_score_desc")
    assert valid
    assert children == dict.fromkeys([*YEARLY_FROM_0001, "attempts_default"], True)
    with engine.connect() as conn:
        child_def = conn.scalar(text("SELECT pg_get_indexdef('ix_attempts_2025_score_desc'::regclass)"))
    assert child_def == (
        "CREATE INDEX ix_attempts_2025_score_desc ON public.attempts_2025 USING btree"
        " (score DESC, attempted_at) WHERE (score > '0.5'::double precision)"
    )
    ensure(engine, interval="year", start="2030-01-01", ahead=0, today=date(2030, 1, 1))
    assert index_state(engine, "ix_attempts_score_desc")[1]["attempts_2030"] is True


def test_partitioned_index_helper_offline_sql_builds_the_same_index_with_psql(
    pg_server: PgServer, db_url: URL, engine: Engine
):
    buffer = io.StringIO()
    ctx = MigrationContext.configure(
        dialect_name="postgresql",
        opts={"as_sql": True, "output_buffer": buffer, "dialect_opts": {"paramstyle": "named"}},
    )
    with ctx.begin_transaction():
        partitions.create_partitioned_index_concurrently(
            Operations(ctx), "ix_attempts_item_id_score", ["item_id", "score"], using="btree"
        )
    script = buffer.getvalue()
    assert (
        "CREATE INDEX IF NOT EXISTS ix_attempts_item_id_score ON ONLY attempts USING btree (item_id, score);"
        in script
    )
    assert "\\gexec" in script
    applied = pg_server.psql(db_url, "-v", "ON_ERROR_STOP=1", input_text=script)
    assert applied.returncode == 0, applied.stderr
    again = pg_server.psql(db_url, "-v", "ON_ERROR_STOP=1", input_text=script)  # idempotent
    assert again.returncode == 0, again.stderr
    valid, children = index_state(engine, "ix_attempts_item_id_score")
    assert valid
    assert children == dict.fromkeys([*YEARLY_FROM_0001, "attempts_default"], True)


def invalid_indexes(engine: Engine) -> list[str]:
    """Invalid indexes on the partitions (what slows every insert), by name."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT x.indexrelid::regclass::text FROM pg_index x JOIN pg_inherits i"
                    " ON i.inhrelid = x.indrelid WHERE i.inhparent = 'attempts'::regclass"
                    " AND NOT x.indisvalid ORDER BY 1"
                )
            ).scalars()
        )


def build_index(engine: Engine, name: str, columns: list[str], where: str | None = None) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn)
        with ctx.begin_transaction():
            partitions.create_partitioned_index_concurrently(Operations(ctx), name, columns, where=where)


# 1 / (score - 0.5) divides by zero on a row whose score is 0.5: the build fails on that partition
FAILS_ON_HALF = "1 / (score - 0.5) > 0"


def test_partitioned_index_helper_failure_leaves_no_invalid_index_and_says_what_is_kept(
    engine: Engine, learner
):
    user, item = learner
    with engine.begin() as conn:
        add_attempts(conn, user, item, "2024-03-01 00:00:00+00", 3)  # scores 0.0, 0.1, 0.2
        add_attempts(conn, user, item, "2025-03-01 00:00:00+00", 6)  # ... 0.5: fails there
    with pytest.raises(MigrationFailed) as caught:
        build_index(engine, "ix_attempts_late", ["score"], where=FAILS_ON_HALF)
    assert str(caught.value) == (
        "partitioned index ix_attempts_late: CREATE INDEX CONCURRENTLY ix_attempts_2025_late ON"
        " public.attempts_2025 (score) WHERE 1 / (score - 0.5) > 0 failed: division by zero;"
        " dropped the invalid ix_attempts_2025_late it left"
        " — kept: ix_attempts_late (invalid until every partition has its index) and"
        " ix_attempts_2024_late (valid, attached); fix the cause and run the revision again, which"
        " keeps what is valid and builds the rest; if you change the index definition, first"
        " DROP INDEX ix_attempts_late (drops its partitions' indexes too)"
    )
    assert invalid_indexes(engine) == []
    assert index_state(engine, "ix_attempts_late") == (False, {"attempts_2024": True})


def test_partitioned_index_helper_rerun_after_an_interrupted_run_completes(engine: Engine, learner):
    user, item = learner
    with engine.begin() as conn:
        add_attempts(conn, user, item, "2026-03-01 00:00:00+00", 6)  # one row scores 0.5
    with engine.connect() as conn:  # what an interrupted run leaves, statement by statement
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        auto.execute(text("CREATE INDEX ix_attempts_score ON ONLY attempts (score)"))
        auto.execute(text("CREATE INDEX CONCURRENTLY ix_attempts_2025_score ON attempts_2025 (score)"))
        auto.execute(text("ALTER INDEX ix_attempts_score ATTACH PARTITION ix_attempts_2025_score"))
        auto.execute(text("CREATE INDEX CONCURRENTLY ix_attempts_2024_score ON attempts_2024 (score)"))
        with pytest.raises(DBAPIError, match="division by zero"):  # killed mid-build: left invalid
            auto.execute(
                text(
                    "CREATE INDEX CONCURRENTLY ix_attempts_2026_score ON attempts_2026 (score)"
                    f" WHERE {FAILS_ON_HALF}"
                )
            )
    assert invalid_indexes(engine) == ["ix_attempts_2026_score"]

    build_index(engine, "ix_attempts_score", ["score"])

    assert invalid_indexes(engine) == []
    assert index_state(engine, "ix_attempts_score") == (
        True,
        dict.fromkeys([*YEARLY_FROM_0001, "attempts_default"], True),
    )
    with engine.connect() as conn:
        rebuilt = conn.scalar(text("SELECT pg_get_indexdef('ix_attempts_2026_score'::regclass)"))
    assert rebuilt == "CREATE INDEX ix_attempts_2026_score ON public.attempts_2026 USING btree (score)"
    build_index(engine, "ix_attempts_score", ["score"])  # and once complete, a re-run does nothing


def test_revision_using_the_partitioned_index_helper_passes_the_projects_lint(versions: Path) -> None:
    # its ON ONLY statement is catalog-only and carries its squawk-ignore; the rest is CONCURRENTLY
    add_python_revision(
        versions,
        f"{NEXT}_index_attempts_score",
        HEAD,
        """
        from scripts.partitions import create_partitioned_index_concurrently

        create_partitioned_index_concurrently(op, "ix_attempts_score", ["score"], where="score > 0.5")
        """,
    )
    assert validate_migrations(offline=True).findings == []


def test_partitioned_index_helper_refuses_malformed_columns():
    ctx = MigrationContext.configure(
        dialect_name="postgresql", opts={"as_sql": True, "output_buffer": io.StringIO()}
    )
    with pytest.raises(
        ConfigError, match=re.escape("index column 'score); DROP TABLE users; --' is malformed")
    ):
        partitions.create_partitioned_index_concurrently(
            Operations(ctx), "ix_x", ["score); DROP TABLE users; --"]
        )


# ------------------------------------------------------------------ CLI wiring


def test_cli_ensure_prints_what_it_created_and_list_flags_default_rows(db_url: URL, engine: Engine, learner):
    user, item = learner
    with engine.begin() as conn:
        add_attempts(conn, user, item, "2033-07-01 00:00:00+00", 3)
    runner = CliRunner()
    url = cli_url(db_url)
    listed = runner.invoke(main, ["partitions", "list", "--format", "json", "--database-url", url])
    assert listed.exit_code == 1
    assert json.loads(listed.stdout)["default_rows"] == 3
    assert "warning: 3 row(s) in default partition attempts_default" in listed.stderr
    created = runner.invoke(
        main, ["partitions", "ensure", "--start", "2033-01-01", "--ahead", "0", "--database-url", url]
    )
    assert created.exit_code == 0, created.output
    assert "created attempts_2033 [2033-01-01 00:00:00+00, 2034-01-01 00:00:00+00)" in created.stdout
    assert "(moved 3 row(s) from the default partition)" in created.stdout
    repeat = runner.invoke(
        main, ["partitions", "ensure", "--start", "2033-01-01", "--ahead", "0", "--database-url", url]
    )
    assert repeat.stdout.startswith(
        "nothing to create: attempts has a partition for every year from 2033-01-01"
    )
    again = runner.invoke(main, ["partitions", "list", "--database-url", url])
    assert again.exit_code == 0, again.output
    assert "attempts_2033" in again.stdout


def test_cli_errors_are_one_line_without_traceback(db_url: URL):
    result = CliRunner().invoke(
        main, ["partitions", "ensure", "--table", "users", "--database-url", cli_url(db_url)]
    )
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "alp-db: error: table 'users' is not partitioned — partitions are managed only for tables"
        " declared PARTITION BY RANGE (time column)"
    ]
    assert "password" not in result.output
