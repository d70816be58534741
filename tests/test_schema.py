"""The schema enforces integrity itself: constraints, partition routing, triggers, views."""

from __future__ import annotations

import io
import threading
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from tests.factories import add_attempts, make_item, make_user
from tests.polling import wait_until


def test_guide_constraint_example_rejects_invalid_email_and_accepts_valid(engine: Engine):
    with engine.connect() as conn, pytest.raises(IntegrityError, match="ck_users_email_format"):
        conn.execute(text("INSERT INTO users (email, country_code) VALUES ('invalid-email', 'US')"))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (email, country_code) VALUES ('valid@example.com', 'US')"))


@pytest.mark.parametrize(
    ("table_sql", "constraint"),
    [
        (
            "INSERT INTO users (email, country_code) VALUES ('a@example.com', 'us')",
            "ck_users_country_code_iso",
        ),
        (
            "INSERT INTO items (item_type, stem, difficulty) VALUES ('numeric', 'x', 9)",
            "ck_items_difficulty_range",
        ),
        (
            "INSERT INTO items (item_type, stem, discrimination) VALUES ('numeric', 'x', 0)",
            "ck_items_discrimination_range",
        ),
        (
            "INSERT INTO items (item_type, stem, guessing) VALUES ('numeric', 'x', 0.9)",
            "ck_items_guessing_range",
        ),
    ],
)
def test_range_checks_reject_out_of_range_values(engine: Engine, table_sql: str, constraint: str):
    with engine.connect() as conn, pytest.raises(IntegrityError, match=constraint):
        conn.execute(text(table_sql))


def test_attempt_score_and_response_time_are_range_checked(engine: Engine):
    with engine.begin() as conn:
        user, item = make_user(conn), make_item(conn)
    for column, value, constraint in [
        ("score", "1.5", "ck_attempts_score_range"),
        ("response_time_ms", "-1", "ck_attempts_response_time_non_negative"),
    ]:
        values = {"score": "1", "response_time_ms": "10", column: value}
        sql = (
            "INSERT INTO attempts (user_id, item_id, is_correct, score, response_time_ms)"
            f" VALUES (:u, :i, true, {values['score']}, {values['response_time_ms']})"
        )
        with engine.connect() as conn, pytest.raises(IntegrityError, match=constraint):
            conn.execute(text(sql), {"u": user, "i": item})


def test_session_cannot_end_before_it_starts(engine: Engine):
    with engine.begin() as conn:
        user = make_user(conn)
    with (
        engine.connect() as conn,
        pytest.raises(IntegrityError, match="ck_learning_sessions_ends_after_start"),
    ):
        conn.execute(
            text(
                "INSERT INTO learning_sessions (user_id, started_at, ended_at)"
                " VALUES (:u, now(), now() - interval '1 minute')"
            ),
            {"u": user},
        )


def test_email_is_unique_whatever_its_case(engine: Engine):
    with engine.begin() as conn:
        make_user(conn, "Ada@Example.com")
    with engine.connect() as conn, pytest.raises(IntegrityError, match="uq_users_email_lower"):
        make_user(conn, "ada@example.COM")


def test_attempts_route_to_their_yearly_partition_and_out_of_range_rows_to_default(engine: Engine):
    with engine.begin() as conn:
        user, item = make_user(conn), make_item(conn)
        for at in [
            "2024-03-01",
            "2025-12-31 23:59:59+00",
            "2026-01-01 00:00:00+00",
            "2027-06-15",
            "2031-01-01",
        ]:
            add_attempts(conn, user, item, at)
        placed = conn.execute(
            text(
                "SELECT tableoid::regclass::text, to_char(attempted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
                " FROM attempts ORDER BY attempted_at"
            )
        ).all()
    assert [tuple(row) for row in placed] == [
        ("attempts_2024", "2024-03-01"),
        ("attempts_2025", "2025-12-31"),
        ("attempts_2026", "2026-01-01"),
        ("attempts_2027", "2027-06-15"),
        ("attempts_default", "2031-01-01"),
    ]


def test_updated_at_moves_on_every_update(engine: Engine):
    with engine.begin() as conn:
        user = make_user(conn)
        conn.execute(text("UPDATE users SET updated_at = '2000-01-01' WHERE id = :u"), {"u": user})
        before = conn.scalar(text("SELECT updated_at FROM users WHERE id = :u"), {"u": user})
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET display_name = 'Ada' WHERE id = :u"), {"u": user})
        after = conn.scalar(text("SELECT updated_at FROM users WHERE id = :u"), {"u": user})
    assert before.year > 2000  # the trigger overrides even an explicit value
    assert after >= before


def test_email_is_stored_trimmed_and_lower_cased(engine: Engine):
    with engine.begin() as conn:
        user = make_user(conn, "  Grace.Hopper@Navy.MIL ")
        assert (
            conn.scalar(text("SELECT email FROM users WHERE id = :u"), {"u": user}) == "grace.hopper@navy.mil"
        )


def test_attempts_cannot_be_updated_or_deleted(engine: Engine):
    with engine.begin() as conn:
        user, item = make_user(conn), make_item(conn)
        add_attempts(conn, user, item, "2026-02-01")
    for sql in ["UPDATE attempts SET score = 0", "DELETE FROM attempts"]:
        with engine.connect() as conn, pytest.raises(IntegrityError, match="append-only"):
            conn.execute(text(sql))


def learner_with_a_session_attempt(engine: Engine) -> tuple[uuid.UUID, uuid.UUID]:
    """A learner with one session holding one attempt: (user id, session id)."""
    with engine.begin() as conn:
        user, item = make_user(conn), make_item(conn)
        session = conn.scalar(
            text("INSERT INTO learning_sessions (user_id) VALUES (:u) RETURNING id"), {"u": user}
        )
        conn.execute(
            text(
                "INSERT INTO attempts (user_id, item_id, session_id, is_correct, score, response_time_ms)"
                " VALUES (:u, :i, :s, true, 1, 900)"
            ),
            {"u": user, "i": item, "s": session},
        )
    return user, session


def test_erasing_a_learner_cascades_to_their_attempts(engine: Engine):
    user, _ = learner_with_a_session_attempt(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE id = :u"), {"u": user})
        assert conn.scalar(text("SELECT count(*) FROM attempts")) == 0
        assert conn.scalar(text("SELECT count(*) FROM learning_sessions")) == 0


def test_a_session_with_attempts_cannot_be_deleted_alone(engine: Engine):
    _, session = learner_with_a_session_attempt(engine)
    with engine.connect() as conn, pytest.raises(IntegrityError, match="fk_attempts_session_id"):
        conn.execute(text("DELETE FROM learning_sessions WHERE id = :s"), {"s": session})


@pytest.mark.parametrize("status", ["draft", "retired"])
def test_no_attempt_on_an_item_that_is_not_active(engine: Engine, status: str):
    with engine.begin() as conn:
        user, item = make_user(conn), make_item(conn, status)
    with engine.connect() as conn, pytest.raises(IntegrityError, match="is not active"):
        add_attempts(conn, user, item, "2026-02-01")


def test_a_batch_with_one_attempt_on_an_inactive_item_is_rejected_whole(engine: Engine):
    with engine.begin() as conn:
        user, live, retired = make_user(conn), make_item(conn), make_item(conn, "retired")
    with engine.connect() as conn, pytest.raises(IntegrityError, match=f"item {retired} is not active"):
        conn.execute(
            text(
                "INSERT INTO attempts (user_id, item_id, attempted_at, is_correct, score, response_time_ms)"
                " SELECT :u, CASE WHEN n = 500 THEN :r ELSE :l END,"
                " '2026-02-01'::timestamptz + n * interval '1 minute', true, 1, 900"
                " FROM generate_series(1, 1000) AS n"
            ),
            {"u": user, "l": live, "r": retired},
        )
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM attempts")) == 0


def test_copy_of_attempts_checks_every_row(engine: Engine):
    with engine.begin() as conn:
        user, live, draft = make_user(conn), make_item(conn), make_item(conn, "draft")
    rows = "".join(
        f"{user}\t{draft if n == 7 else live}\t2026-03-01 00:{n:02d}:00+00\ttrue\t1\t900\n" for n in range(20)
    )
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur, pytest.raises(Exception, match=f"item {draft} is not active"):
            cur.copy_expert(
                "COPY attempts (user_id, item_id, attempted_at, is_correct, score, response_time_ms)"
                " FROM STDIN",
                io.StringIO(rows),
            )
    finally:
        raw.rollback()
        raw.close()


@pytest.mark.parametrize("partition", ["attempts_default", "attempts_new"])
def test_attempt_written_straight_into_a_partition_is_checked(engine: Engine, partition: str):
    """A partition named directly (an existing one, or one attached later) checks the item too."""
    with engine.begin() as conn:
        user, draft = make_user(conn), make_item(conn, "draft")
        if partition == "attempts_new":
            conn.execute(
                text(
                    "CREATE TABLE attempts_new PARTITION OF attempts"
                    " FOR VALUES FROM ('2030-01-01 00:00:00+00') TO ('2031-01-01 00:00:00+00')"
                )
            )
    at = "2030-06-01" if partition == "attempts_new" else "2099-01-01"
    table = engine.dialect.identifier_preparer.quote(partition)
    with engine.connect() as conn, pytest.raises(IntegrityError, match="is not active"):
        conn.execute(
            text(
                f"INSERT INTO {table} (user_id, item_id, attempted_at, is_correct, score, response_time_ms)"
                " VALUES (:u, :i, CAST(:at AS timestamptz), true, 1, 900)"
            ),
            {"u": user, "i": draft, "at": at},
        )


def test_an_item_with_attempts_cannot_be_deleted(engine: Engine):
    with engine.begin() as conn:
        user, item = make_user(conn), make_item(conn)
        add_attempts(conn, user, item, "2026-02-01")
    with engine.connect() as conn, pytest.raises(IntegrityError, match="fk_attempts_item_id_items"):
        conn.execute(text("DELETE FROM items WHERE id = :i"), {"i": item})


def test_skill_hierarchy_rejects_cycles(engine: Engine):
    with engine.begin() as conn:
        algebra = conn.scalar(text("INSERT INTO skills (code, name) VALUES ('alg', 'Algebra') RETURNING id"))
        linear = conn.scalar(
            text("INSERT INTO skills (code, name, parent_id) VALUES ('lin', 'Linear', :p) RETURNING id"),
            {"p": algebra},
        )
    with engine.connect() as conn, pytest.raises(IntegrityError, match="descendant of itself"):
        conn.execute(text("UPDATE skills SET parent_id = :c WHERE id = :p"), {"c": linear, "p": algebra})


GUIDE_MONITORING_QUERIES = [
    "SELECT * FROM migration_history ORDER BY applied_at DESC",
    "SELECT pg_size_pretty(pg_database_size(current_database()))",
    "SELECT * FROM table_sizes LIMIT 10",
    "SELECT * FROM slow_queries LIMIT 5",
    "SELECT * FROM index_usage WHERE idx_tup_read < 1000",
    "SELECT * FROM connection_stats",
    "SELECT * FROM system_health",
    "SELECT * FROM item_statistics",
    "SELECT * FROM learner_progress",
    "SELECT * FROM daily_activity",
]


@pytest.mark.parametrize("query", GUIDE_MONITORING_QUERIES)
def test_guide_monitoring_queries_answer(engine: Engine, query: str):
    with engine.connect() as conn:
        conn.execute(text(query)).all()


def test_views_report_what_is_in_the_database(engine: Engine):
    with engine.begin() as conn:
        user, item = make_user(conn), make_item(conn)
        add_attempts(conn, user, item, "2026-02-01 10:00+00")
        add_attempts(conn, user, item, "2026-02-01 11:00+00")
    with engine.connect() as conn:
        sizes = conn.execute(text("SELECT table_name, partitions FROM table_sizes")).all()
        assert ("attempts", 5) in [tuple(r) for r in sizes]
        health = conn.execute(text("SELECT * FROM system_health")).mappings().one()
        assert health["connections"] >= 1 and 0 <= health["cache_hit_ratio"] <= 100
        stats = conn.execute(
            text("SELECT attempts, p_correct FROM item_statistics WHERE item_id = :i"), {"i": item}
        ).one()
        assert (stats.attempts, float(stats.p_correct)) == (2, 1.0)
        progress = conn.execute(
            text("SELECT attempts FROM learner_progress WHERE user_id = :u"), {"u": user}
        ).scalar()
        assert progress == 2
        daily = conn.execute(text("SELECT day::text, attempts FROM daily_activity")).all()
        assert [tuple(r) for r in daily] == [("2026-02-01", 2)]
        usage = conn.execute(text("SELECT index_name, idx_tup_read FROM index_usage")).all()
        assert "pk_users" in {r.index_name for r in usage}


def test_slow_queries_shows_a_statement_running_for_more_than_a_second(engine: Engine):
    def sleeper() -> None:
        with engine.connect() as conn, pytest.raises(DBAPIError):
            conn.execute(text("SELECT pg_sleep(30) /* alp-db-slow-probe */"))

    thread = threading.Thread(target=sleeper)
    thread.start()
    try:
        with engine.connect() as conn:

            def probe():  # type: ignore[no-untyped-def]
                row = conn.execute(
                    text("SELECT pid, duration_ms FROM slow_queries WHERE query LIKE '%alp-db-slow-probe%'")
                ).first()
                conn.rollback()
                return row

            found = wait_until(probe, "the sleeping query in slow_queries")
            assert found.duration_ms >= 1000
            conn.execute(text("SELECT pg_cancel_backend(:p)"), {"p": found.pid})
    finally:
        thread.join()
