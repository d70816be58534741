"""Rows for tests: a learner, an item, attempts — the minimum the schema's rules accept."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.engine import Connection


def make_user(conn: Connection, email: str = "learner@example.com") -> uuid.UUID:
    return conn.scalar(text("INSERT INTO users (email) VALUES (:e) RETURNING id"), {"e": email})


def make_item(conn: Connection, status: str = "active") -> uuid.UUID:
    return conn.scalar(
        text(
            "INSERT INTO items (item_type, status, stem, difficulty)"
            " VALUES ('multiple_choice', CAST(:s AS item_status), 'What is 2+2?', 0.5) RETURNING id"
        ),
        {"s": status},
    )


def add_attempts(conn: Connection, user: uuid.UUID, item: uuid.UUID, first: str, count: int = 1) -> None:
    """``count`` attempts one hour apart from ``first``."""
    conn.execute(
        text(
            "INSERT INTO attempts"
            " (user_id, item_id, attempted_at, is_correct, score, response_time_ms, answer)"
            " SELECT :u, :i, CAST(:at AS timestamptz) + n * interval '1 hour', n % 2 = 0, (n % 10) / 10.0,"
            " 1000 + n, jsonb_build_object('n', n) FROM generate_series(0, :c - 1) AS n"
        ),
        {"u": user, "i": item, "at": first, "c": count},
    )
