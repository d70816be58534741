"""Binary COPY encoding: what goes in comes back out, NULLs and non-ASCII text included."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import numpy as np
from psycopg2 import sql

from scripts.db.engine import make_engine
from scripts.seed import copy_binary as pgcopy


def test_binary_copy_round_trips_every_kind_with_nulls_and_unicode(db_url):
    ids = np.frombuffer(uuid.UUID("0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b").bytes * 3, np.uint8).reshape(3, 16)
    moment = int(dt.datetime(2025, 6, 1, 12, 30, tzinfo=dt.timezone.utc).timestamp()) * 1_000_000
    columns = [
        pgcopy.Column("id", "uuid", ids, valid=np.array([True, False, True])),
        pgcopy.Column("label", "text", ["Zoë", None, ""]),
        pgcopy.Column("at", "timestamptz", np.array([moment, moment + 1, moment - 1])),
        pgcopy.Column("ratio", "float8", np.array([0.25, -1.5, 1e300])),
        pgcopy.Column("n", "int4", np.array([1, -2, 2_000_000_000])),
        pgcopy.Column("ok", "bool", np.array([True, False, True])),
    ]
    engine = make_engine(db_url)
    try:
        raw = engine.raw_connection()
        with raw.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE sample (id uuid, label text, at timestamptz, ratio float8, n int, ok bool)"
            )
            statement = sql.SQL("COPY sample ({}) FROM STDIN (FORMAT binary)").format(
                sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
            )
            cur.copy_expert(statement, io.BytesIO(pgcopy.payload(columns)))
            cur.execute("SELECT id::text, label, at, ratio, n, ok FROM sample ORDER BY n")
            rows = cur.fetchall()
        raw.close()
    finally:
        engine.dispose()
    at = dt.datetime(2025, 6, 1, 12, 30, tzinfo=dt.timezone.utc)
    tick = dt.timedelta(microseconds=1)
    assert [(r[0], r[1], r[2].astimezone(dt.timezone.utc), r[3], r[4], r[5]) for r in rows] == [
        (None, None, at + tick, -1.5, -2, False),
        ("0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b", "Zoë", at, 0.25, 1, True),
        ("0190a1b2-c3d4-7e5f-8a6b-1c2d3e4f5a6b", "", at - tick, 1e300, 2_000_000_000, True),
    ]
