"""Pure helpers of data migrations: names, keys, options and the SQL text built from a plan."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql

from scripts.backfill.expressions import parse_set, parse_where
from scripts.backfill.health import HealthLimits, Signals, reasons
from scripts.backfill.pacing import BatchSizer
from scripts.backfill.plan import BatchOptions, Plan, default_name, parse_key, split_table
from scripts.backfill.sql import Statements, key_params
from scripts.errors import ConfigError, DataMigrationError


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("items", (None, "items")),
        (" public.items ", ("public", "items")),
        ('"My Schema".items', ('"My Schema"', "items")),
        (".items", (None, "items")),
    ],
)
def test_split_table(given, expected):
    assert split_table(given) == expected


@pytest.mark.parametrize("given", ["", "  ", "public."])
def test_split_table_refuses_an_empty_name(given):
    with pytest.raises(DataMigrationError, match="is empty"):
        split_table(given)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, None),
        ("id", ("id",)),
        (" learner , item ", ("learner", "item")),
        (["learner", " item"], ("learner", "item")),
        ("a,,b,", ("a", "b")),
    ],
)
def test_parse_key(given, expected):
    assert parse_key(given) == expected


@pytest.mark.parametrize("given", ["", " , ", []])
def test_parse_key_refuses_an_empty_key(given):
    with pytest.raises(DataMigrationError, match="the key is empty"):
        parse_key(given)


def test_default_name_is_stable_and_tells_changes_apart():
    one = default_name("items", "x = 1", None, None)
    assert one == default_name("items", "x = 1", None, None)
    assert one.startswith("items_") and len(one) == len("items_") + 10
    others = {
        default_name("items", "x = 2", None, None),
        default_name("items", "x = 1", "true", None),
        default_name("items", "x = 1", None, ["id"]),
        default_name("users", "x = 1", None, None),
    }
    assert one not in others and len(others) == 4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": 0}, "batch size 0 is not positive"),
        ({"sleep": -1.0}, "sleep -1.0 is negative"),
        ({"max_retries": -1}, "max retries -1 is negative"),
        ({"lock_timeout": "soon"}, "lock timeout 'soon' is not a duration"),
    ],
)
def test_batch_options_refuse_bad_values(overrides, message):
    with pytest.raises(ConfigError, match=message):
        BatchOptions.of(**overrides)


def test_batch_options_take_named_values_and_ignore_none():
    options = BatchOptions.of(BatchOptions(batch_size=10), sleep=None, lock_timeout="1 s")
    assert (options.batch_size, options.sleep, options.lock_timeout) == (10, 0.0, "1s")
    with pytest.raises(TypeError, match="unexpected batch option bach_size"):
        BatchOptions.of(bach_size=1)


def _plan(**changes: object) -> Plan:
    values: dict[str, object] = {
        "name": "n",
        "table": "items",
        "schema": "public",
        "relname": "items",
        "key": ("id",),
        "set_": "difficulty = difficulty::numeric * 2",
        "where": "stem <> 'a:b'",
        "options": BatchOptions(),
        **changes,
    }
    return Plan(**values)  # type: ignore[arg-type]


def test_statements_quote_identifiers_and_escape_the_operators_colons():
    sql = Statements(postgresql.dialect(), _plan(schema="My Schema", relname="select", key=("a", "B")))
    batch = str(sql.batch(first=False))
    assert 'UPDATE "My Schema"."select" SET' in batch
    assert '(a, "B") > (:lo_0, :lo_1)' in batch
    # the operator's colons reach the server as written (text() unescapes them)
    compiled = str(sql.batch(first=False).compile(dialect=postgresql.dialect()))
    assert "difficulty::numeric * 2" in compiled and "'a:b'" in compiled


def test_operator_sql_stands_on_lines_of_its_own():
    sql = Statements(postgresql.dialect(), _plan(set_="x = 1 -- why", where="y -- because"))
    batch = str(sql.batch(first=True))
    assert "SET\nx = 1 -- why\nWHERE" in batch
    assert "(\ny -- because\n)" in batch
    assert "> (:lo_0)" not in batch  # the first batch has no lower bound


def test_a_single_key_with_max_uses_an_aggregate_not_a_sort():
    with_max = str(Statements(postgresql.dialect(), _plan(key_has_max=True)).batch(first=True))
    without = str(Statements(postgresql.dialect(), _plan()).batch(first=True))
    assert "max(id)" in with_max
    assert "count(*) OVER ()" in without and "count(*) OVER ()" not in with_max


def test_key_params_number_the_columns():
    assert key_params("lo", ("1", "b")) == {"lo_0": "1", "lo_1": "b"}
    assert key_params("lo", None) == {}


@pytest.mark.parametrize(
    ("set_", "assigned"),
    [
        ("difficulty = difficulty * 1.1", {"difficulty"}),
        ('Stem = 1, "Mixed" = 2', {"stem", "Mixed"}),
        ("(a, b) = (1, 2), c = DEFAULT", {"a", "b", "c"}),
        ("point.x = 1, tags[1] = 'a'", {"point", "tags"}),
        ("stem = 'id = 1', note = $$k = v$$", {"stem", "note"}),
        ("x = (SELECT max(id) FROM t WHERE t.y = 1)", {"x"}),
    ],
)
def test_assigned_columns_come_from_the_parse_tree(set_, assigned):
    assert parse_set(set_)[1] == assigned


@pytest.mark.parametrize(
    ("label", "expr", "message"),
    [
        ("SET", "", "SET is empty"),
        ("SET", "x = 1; SELECT 1", "more than one statement"),
        ("SET", "x = 1 WHERE y", "it holds WHERE"),
        ("SET", "x = ", "not valid SQL here (syntax error at end of input)"),
        ("WHERE", "false) OR (true", 'not valid SQL here (syntax error at or near ")")'),
        ("WHERE", "a AND (b", "not valid SQL here"),
        ("WHERE", "true LIMIT 1", "it holds LIMIT"),
        ("WHERE", "true GROUP BY 1", "it holds GROUP BY"),
        ("WHERE", "   ", "WHERE is empty"),
    ],
)
def test_set_and_where_refusals_say_why(label, expr, message):
    with pytest.raises(DataMigrationError) as caught:
        parse_set(expr) if label == "SET" else parse_where(expr)
    assert message in str(caught.value)


def test_where_keeps_comments_and_nested_parentheses():
    assert parse_where(" (a OR (b AND c)) -- why\n") == "(a OR (b AND c)) -- why"
    assert parse_where(None) is None


def test_batch_sizer_moves_toward_the_target_in_bounded_steps():
    sizer = BatchSizer(size=400, adaptive=True, target_s=0.1, min_size=10, max_size=1000)
    cost_per_row = 0.001  # the right size is 100
    sizes = [sizer.observe(sizer.size * cost_per_row, sizer.size) for _ in range(8)]
    assert sizes[0] == 200  # at most halved in one step
    assert 90 <= sizes[-1] <= 110
    grow = BatchSizer(size=10, adaptive=True, target_s=0.1, min_size=10, max_size=1000)
    assert grow.observe(0.001, 10) == 15  # at most +50% in one step


def test_batch_sizer_keeps_a_fixed_size_and_learns_nothing_from_a_short_last_batch():
    fixed = BatchSizer(size=50, adaptive=False, target_s=0.1, min_size=10, max_size=1000)
    assert fixed.observe(10.0, 50) == 50
    adaptive = BatchSizer(size=500, adaptive=True, target_s=0.1, min_size=10, max_size=1000)
    assert adaptive.observe(10.0, 7) == 500
    assert adaptive.observe(0.105, 500) == 500  # within 10% of the target


def test_health_reasons_name_each_signal_over_its_limit():
    limits = HealthLimits(max_replay_lag_s=10, max_replay_lag_bytes=1024**2, max_slot_wal_bytes=2 * 1024**2)
    calm = Signals(replay_lag_s=1.0, standby="s1", replay_lag_bytes=10, slot_wal_bytes=10, autovacuums=0)
    assert reasons(calm, limits, "items") == []
    assert reasons(None, limits, "items") == []  # a server in recovery has nothing to check
    busy = Signals(
        replay_lag_s=12.5,
        standby="s1",
        replay_lag_bytes=3 * 1024**2,
        slot_wal_bytes=3 * 1024**2,
        autovacuums=1,
        wraparound_autovacuums=1,
    )
    assert reasons(busy, limits, "items") == [
        "standby 's1' is 3.0 MB of WAL behind (limit 1.0 MB)",
        "standby 's1' replays 12.5s behind (limit 10s)",
        "replication slots retain 3.0 MB of WAL (limit 2.0 MB)",
        "an anti-wraparound autovacuum is working on items",
    ]
    assert reasons(busy, HealthLimits(enabled=False), "items") == []
    ordinary = Signals(
        replay_lag_s=None, standby=None, replay_lag_bytes=None, slot_wal_bytes=None, autovacuums=1
    )
    assert reasons(ordinary, limits, "items") == []  # the default pauses for anti-wraparound only
    assert reasons(ordinary, HealthLimits(pause_on_autovacuum="any"), "items") == [
        "autovacuum is working on items"
    ]
    unknown = Signals(
        replay_lag_s=None, standby=None, replay_lag_bytes=None, slot_wal_bytes=None, autovacuums=0
    )
    assert reasons(unknown, limits, "items") == []


def test_batch_options_adapt_unless_a_size_is_given():
    assert BatchOptions().adaptive and BatchOptions().first_batch_size == 5000
    assert BatchOptions(max_batch_size=400).first_batch_size == 400
    assert not BatchOptions(batch_size=7).adaptive and BatchOptions(batch_size=7).first_batch_size == 7
    with pytest.raises(ConfigError, match=r"batch size bounds 10\.\.5"):
        BatchOptions(min_batch_size=10, max_batch_size=5)
