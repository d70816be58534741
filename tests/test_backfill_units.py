"""Pure helpers of data migrations: names, keys, options and the SQL text built from a plan."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql

from scripts.backfill.expressions import parse_set, parse_where
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
