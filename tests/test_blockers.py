"""The tables a lock-timeout message names: read from PostgreSQL's parse tree, not from text."""

from __future__ import annotations

from scripts.migrations.blockers import Relation, tables_in_statement


def names(statement: str) -> list[str]:
    return [str(r) for r in tables_in_statement(statement)]


def test_ddl_names_the_table_and_what_it_refers_to():
    assert names("ALTER TABLE public.items ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES users (id)") == [
        "public.items",
        "users",
    ]
    assert names("CREATE TRIGGER t AFTER INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION f()") == [
        "items"
    ]
    assert names(
        "CREATE TABLE attempts_2030 PARTITION OF attempts FOR VALUES FROM ('2030-01-01') TO ('2031-01-01')"
    ) == ["attempts_2030", "attempts"]


def test_with_queries_are_not_tables_and_each_table_comes_once():
    statement = (
        "WITH recent AS (SELECT item_id FROM attempts) UPDATE items SET status = 'retired'"
        " FROM recent JOIN skills s ON true WHERE items.id = recent.item_id AND EXISTS (SELECT FROM items)"
    )
    assert sorted(names(statement)) == ["attempts", "items", "skills"]


def test_names_keep_their_exact_spelling_and_keywords_in_strings_are_not_tables():
    assert tables_in_statement('LOCK TABLE ONLY "Odd.Name" IN ACCESS EXCLUSIVE MODE') == [
        Relation(None, "Odd.Name")
    ]
    # a regex over the text would take "users" after FROM inside the literal
    assert names("UPDATE items SET stem = 'copied FROM users' WHERE id = 1") == ["items"]


def test_a_statement_that_does_not_parse_names_nothing():
    assert tables_in_statement("ALTER TABLE items ADD COLUMN") == []
