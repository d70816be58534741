"""SET and WHERE reach the server only as one assignment list and one boolean expression.

Each case is refused before anything is sent: no table created, no row changed, no checkpoint
table, dry run included.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import Engine

from scripts.cli import main
from tests.test_backfill import GUIDE_SET, GUIDE_WHERE, checkpoint_table_exists, difficulties, seed_items

# The payload: a ';' inside a dollar quote hid from a check that stripped only '...'
# and "..." quotes, then COMMIT and a CREATE TABLE ran (in a dry run).
PWNED_SET = "difficulty = length($$'$$) WHERE false; COMMIT; CREATE TABLE pwned(); SELECT $$'$$"

INJECTIONS = [
    pytest.param({"set_": PWNED_SET}, "more than one statement", id="commit-inside-dollar-quotes"),
    pytest.param({"where": "false) OR (true"}, "not valid SQL here", id="where-escapes-its-parentheses"),
    pytest.param({"where": "(difficulty < 2.0"}, "not valid SQL here", id="unbalanced-open"),
    pytest.param({"where": "difficulty < 2.0)"}, "not valid SQL here", id="unbalanced-close"),
    pytest.param({"set_": "difficulty = (difficulty * 1.1"}, "not valid SQL here", id="set-unbalanced"),
    pytest.param({"set_": "difficulty = 0 WHERE true"}, "it holds WHERE", id="set-with-its-own-where"),
    pytest.param({"set_": "difficulty = 0 FROM users"}, "it holds FROM", id="set-with-from"),
    pytest.param({"set_": "difficulty = 0 RETURNING *"}, "it holds RETURNING", id="set-with-returning"),
    pytest.param({"set_": "difficulty = 0;"}, "more than one statement", id="set-trailing-semicolon"),
    pytest.param(
        {"where": "true; CREATE TABLE pwned()"}, "more than one statement", id="where-second-statement"
    ),
    pytest.param({"where": "true UNION SELECT true"}, "UNION", id="where-set-operation"),
    pytest.param({"where": "true ORDER BY 1"}, "ORDER BY", id="where-order-by"),
    pytest.param({"where": "true /* open comment"}, "not valid SQL here", id="where-open-comment"),
    pytest.param(
        {"set_": "difficulty = 1 $alp_backfill$; CREATE TABLE pwned(); $alp_backfill$"},
        "alp_backfill",
        id="closes-the-offline-dollar-quote",
    ),
]


def pwned_exists(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT to_regclass('pwned') IS NOT NULL")) is True


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
@pytest.mark.parametrize(("options", "message"), INJECTIONS)
def test_smuggled_sql_is_refused_in_one_line_and_nothing_runs(db_url, engine, options, message, dry_run):
    before = seed_items(engine, count=50)
    args = {"set_": GUIDE_SET, "where": GUIDE_WHERE, **options}
    argv = ["batch-update", "items", "--set", args["set_"], "--where", args["where"]]
    env = {"DATABASE_URL": db_url.render_as_string(hide_password=False)}
    result = CliRunner().invoke(main, [*argv, *(["--dry-run"] if dry_run else [])], env=env)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("alp-db: error: ") and message in line and "nothing was changed" in line
    assert not pwned_exists(engine)
    assert difficulties(engine) == before
    assert not checkpoint_table_exists(engine)


def test_semicolons_and_colons_inside_literals_are_data(db_url, engine):
    seed_items(engine, count=10)
    env = {"DATABASE_URL": db_url.render_as_string(hide_password=False)}
    argv = ["batch-update", "items", "--set", "stem = stem || $$; COMMIT$$ || ':x'::text"]
    result = CliRunner().invoke(main, [*argv, "--where", "stem <> ';'"], env=env)
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        stems = set(conn.scalars(text("SELECT right(stem, 10) FROM items")))
    assert stems == {"; COMMIT:x"}
