"""Seed data: reproducible, realistic (3PL IRT), inside the yearly partitions, guarded."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from psycopg2 import sql
from sqlalchemy import text
from sqlalchemy.engine import URL

from scripts import seed
from scripts.cli import main
from scripts.db.engine import make_engine
from scripts.errors import AlreadySeeded, PermissionDenied, ProductionDatabase, SeedFailed
from tests.polling import wait_for_sql

SMALL = seed.make_plan(users=150, items=120, attempts=4_000, seed=7)


@pytest.fixture
def other_db_url(make_db, template_db: str) -> URL:  # type: ignore[no-untyped-def]
    """A second fresh database at head."""
    return make_db("alp_test", template_db)  # type: ignore[no-any-return]


def query(url: URL, statement: str, **params: object) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            return [tuple(row) for row in conn.execute(text(statement), params)]
    finally:
        engine.dispose()


@contextlib.contextmanager
def raw_cursor(url: URL) -> Iterator[Any]:
    """A psycopg2 cursor on a connection of its own, rolled back at the end."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            with raw.cursor() as cur:
                yield cur
            raw.rollback()
    finally:
        engine.dispose()


def checksums(url: URL) -> dict[str, str]:
    """md5 over each seeded table's rows, in a stable order."""
    out = {}
    with raw_cursor(url) as cur:
        for table in seed.SEED_TABLES:
            cur.execute(
                sql.SQL("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {} t").format(
                    sql.Identifier(table)
                )
            )
            out[table] = cur.fetchone()[0]
    return out


def test_same_seed_gives_identical_rows_in_two_databases(db_url, other_db_url):
    seed.seed(db_url, SMALL)
    seed.seed(other_db_url, SMALL)
    first, second = checksums(db_url), checksums(other_db_url)
    assert all(first.values()), first
    assert first == second


def test_different_seeds_give_different_rows(db_url, other_db_url):
    seed.seed(db_url, SMALL)
    seed.seed(other_db_url, seed.make_plan(users=150, items=120, attempts=4_000, seed=8))
    first, second = checksums(db_url), checksums(other_db_url)
    assert [t for t in seed.SEED_TABLES if first[t] == second[t]] == []


def test_row_checks_mode_loads_the_same_rows_as_bulk_mode(db_url, other_db_url):
    seed.seed(db_url, SMALL)
    seed.seed(other_db_url, SMALL, row_checks=True)
    assert checksums(db_url) == checksums(other_db_url)


def test_accuracy_falls_as_item_difficulty_rises(db_url):
    seed.seed(db_url, SMALL)
    rows = query(
        db_url,
        "SELECT quintile, avg(is_correct::int)::float FROM ("
        " SELECT a.is_correct, ntile(5) OVER (ORDER BY i.difficulty) AS quintile"
        " FROM attempts a JOIN items i ON i.id = a.item_id) q GROUP BY quintile ORDER BY quintile",
    )
    accuracy = [acc for _, acc in rows]
    assert len(accuracy) == 5
    assert all(easier > harder for easier, harder in itertools.pairwise(accuracy)), accuracy


def test_item_parameters_stay_inside_the_irt_ranges(db_url):
    seed.seed(db_url, SMALL)
    ((low_b, high_b, low_a, high_a, mc_c, sa_c, learners, bad_country),) = query(
        db_url,
        "SELECT min(difficulty), max(difficulty), min(discrimination), max(discrimination),"
        " avg(guessing) FILTER (WHERE item_type = 'multiple_choice'),"
        " max(guessing) FILTER (WHERE item_type IN ('short_answer', 'numeric')),"
        " (SELECT count(*) FROM users WHERE role = 'learner'),"
        " (SELECT count(*) FROM users WHERE country_code IS NULL) FROM items",
    )
    assert -5 <= low_b < 0 < high_b <= 5
    assert 0 < low_a < 1 < high_a <= 4
    assert 0.2 <= mc_c <= 0.25 and sa_c == 0
    assert learners == SMALL.users and bad_country == 0


def test_attempts_fill_every_spanned_yearly_partition_and_never_the_default(db_url):
    seed.seed(db_url, SMALL)
    counts = dict(
        query(
            db_url,
            "SELECT c.relname, (SELECT count(*) FROM attempts a WHERE a.tableoid = c.oid)"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'attempts'::regclass",
        )
    )
    assert counts["attempts_default"] == 0
    for year in (2024, 2025, 2026):
        assert counts[f"attempts_{year}"] > 0, counts
    assert sum(counts.values()) == SMALL.attempts


def test_skill_mastery_counts_match_the_attempts(db_url):
    seed.seed(db_url, SMALL)
    mismatches = query(
        db_url,
        "WITH counted AS ("
        " SELECT a.user_id, s.skill_id, count(*) AS n, count(*) FILTER (WHERE a.is_correct) AS ok,"
        "        max(a.attempted_at) AS last"
        " FROM attempts a JOIN item_skills s ON s.item_id = a.item_id GROUP BY 1, 2)"
        " SELECT c.user_id, c.skill_id, c.n, m.attempts_count, c.ok, m.correct_count"
        " FROM counted c FULL JOIN skill_mastery m USING (user_id, skill_id)"
        " WHERE c.n IS DISTINCT FROM m.attempts_count OR c.ok IS DISTINCT FROM m.correct_count"
        "    OR c.last IS DISTINCT FROM m.updated_at OR m.mastery NOT BETWEEN 0 AND 1",
    )
    assert mismatches == []
    assert query(db_url, "SELECT count(*) > 0 FROM skill_mastery") == [(True,)]


def test_bulk_load_leaves_triggers_keys_and_indexes_as_the_migrations_made_them(db_url):
    catalog = (
        "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.convalidated::text,"
        "       obj_description(c.oid, 'pg_constraint'), c.conparentid <> 0"
        " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'"
        " UNION ALL"
        " SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text,"
        "        obj_description(t.oid, 'pg_trigger'), t.tgparentid <> 0"
        " FROM pg_trigger t WHERE NOT t.tgisinternal UNION ALL"
        " SELECT tablename, indexname, indexdef, '', obj_description(indexname::regclass, 'pg_class'), false"
        " FROM pg_indexes WHERE schemaname = 'public'"
        " ORDER BY 1, 2, 3"
    )
    # What a grown project carries that a rebuild could lose: comments on what bulk mode drops,
    # and partition indexes named otherwise than the server would name a rebuilt index's copies.
    query(
        db_url,
        "COMMENT ON TRIGGER trg_attempts_require_active_item ON attempts IS 'row check';"
        " COMMENT ON TRIGGER trg_attempts_require_active_items ON attempts_2025 IS 'partition check';"
        " COMMENT ON CONSTRAINT pk_attempts ON attempts IS 'uuid7 and time';"
        " COMMENT ON CONSTRAINT fk_attempts_item_id_items ON attempts IS 'items stay';"
        " COMMENT ON INDEX ix_attempts_item_id_attempted_at IS 'item statistics';"
        " ALTER INDEX attempts_2025_item_id_attempted_at_idx RENAME TO ix_attempts_2025_item_time;"
        " ALTER INDEX attempts_2026_pkey RENAME TO pk_attempts_2026;"
        " SELECT 1",
    )
    before = query(db_url, catalog)
    seed.seed(db_url, SMALL)
    assert query(db_url, catalog) == before


def test_bulk_mode_keeps_what_it_could_not_put_back_and_still_loads(db_url):
    """A primary key a view depends on (GROUP BY the key: functional dependency) cannot be
    dropped, and an index's CLUSTER mark is not in pg_get_indexdef: both stay as they are."""
    query(
        db_url,
        "CREATE VIEW attempt_owner AS"
        " SELECT id, attempted_at, user_id FROM attempts GROUP BY id, attempted_at;"
        " ALTER TABLE learning_sessions CLUSTER ON ix_learning_sessions_user_id_started_at;"
        " SELECT 1",
    )
    result = seed.seed(db_url, SMALL)
    assert result.rows["attempts"] == SMALL.attempts
    assert query(db_url, "SELECT count(*) FROM attempt_owner") == [(SMALL.attempts,)]
    assert query(
        db_url,
        "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indisclustered",
    ) == [("ix_learning_sessions_user_id_started_at",)]


def test_bulk_mode_leaves_attempts_nothing_that_makes_copy_insert_row_by_row(db_url):
    """COPY into a partitioned table inserts row by row, not in batches, while the parent has a
    statement trigger with a transition table or a partition has a BEFORE INSERT row trigger,
    disabled or not (copyfrom.c); bulk mode must take both off, not only disable them."""
    from scripts.seed import bulk

    batch_breakers = (
        "SELECT t.tgrelid::regclass::text, t.tgname FROM pg_trigger t"
        " WHERE t.tgrelid IN (SELECT relid FROM pg_partition_tree('attempts'))"
        "   AND ((t.tgtype & 7) = 7 OR (t.tgnewtable IS NOT NULL AND t.tgrelid = 'attempts'::regclass))"
    )  # tgtype bits: 1 row, 2 before, 4 insert
    assert query(db_url, batch_breakers)  # the migrations put them there
    with raw_cursor(db_url) as cur:
        bulk.suspend(cur)
        cur.execute(batch_breakers)
        assert cur.fetchall() == []


def test_every_attempt_is_on_an_active_item_in_the_learners_session(db_url):
    seed.seed(db_url, SMALL)
    assert query(
        db_url,
        "SELECT count(*) FILTER (WHERE i.status <> 'active'),"
        " count(*) FILTER (WHERE s.user_id <> a.user_id OR a.attempted_at < s.started_at"
        "                  OR a.attempted_at > s.ended_at)"
        " FROM attempts a JOIN items i ON i.id = a.item_id JOIN learning_sessions s ON s.id = a.session_id",
    ) == [(0, 0)]


def test_production_marker_refuses_and_force_proceeds(db_url):
    engine = make_engine(db_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        prep = conn.dialect.identifier_preparer
        conn.exec_driver_sql(
            f"ALTER DATABASE {prep.quote(db_url.database)} SET alp_db.environment = 'production'"
        )
    engine.dispose()
    with pytest.raises(ProductionDatabase, match=r"alp_db\.environment = 'production'"):
        seed.seed(db_url, SMALL)
    assert query(db_url, "SELECT count(*) FROM users") == [(0,)]
    result = seed.seed(db_url, SMALL, force=True)
    assert result.rows["attempts"] == SMALL.attempts


def test_more_than_ten_thousand_learners_looks_like_production(db_url):
    query(
        db_url,
        "INSERT INTO users (email) SELECT 'person' || g || '@example.org' FROM generate_series(1, 10001) g"
        " RETURNING 1",
    )
    with pytest.raises(ProductionDatabase, match="10001 learners"):
        seed.seed(db_url, SMALL)
    seed.seed(db_url, SMALL, force=True)
    assert query(db_url, "SELECT count(*) FROM users WHERE role = 'learner'") == [(10001 + SMALL.users,)]


def test_second_seed_is_refused_and_replace_reloads_the_same_rows(db_url):
    seed.seed(db_url, SMALL)
    first = checksums(db_url)
    with pytest.raises(AlreadySeeded, match="--replace"):
        seed.seed(db_url, SMALL)
    assert checksums(db_url) == first
    seed.seed(db_url, SMALL, replace=True)
    assert checksums(db_url) == first


def test_seed_command_prints_row_counts_as_json(db_url):
    url = db_url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        main, ["seed", "--database-url", url, "--users", "50", "--items", "40", "--attempts", "500",
               "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["rows"]["attempts"] == 500 and payload["seed"] == 42


def test_seed_command_refuses_production_in_one_line(db_url):
    query(
        db_url,
        "INSERT INTO users (email) SELECT 'person' || g || '@example.org'"
        " FROM generate_series(1, 3) g RETURNING 1",
    )
    url = db_url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        main, ["seed", "--database-url", url, "--attempts", "100", "--max-existing-learners", "2"]
    )
    assert result.exit_code == 2
    assert (
        result.stderr.count("\n") == 1 and "refusing to seed" in result.stderr and "--force" in result.stderr
    )


def test_missing_yearly_partition_fails_the_seed_and_loads_nothing(db_url):
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE attempts DETACH PARTITION attempts_2025"))
    engine.dispose()
    with pytest.raises(SeedFailed, match="default partition") as caught:
        seed.seed(db_url, SMALL)
    assert "alp-db partitions ensure" in str(caught.value)
    assert query(db_url, "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM attempts)") == [(0, 0)]


@pytest.fixture
def non_owner_url(db_url: URL, make_role) -> URL:  # type: ignore[no-untyped-def]
    """A login that may read and insert into every table but owns none of them."""
    password = "seeder-pass"
    role = make_role("seeder", db_url, password=password)
    engine = make_engine(db_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        quoted = conn.dialect.identifier_preparer.quote(role)
        conn.exec_driver_sql(f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {quoted}")
    engine.dispose()
    return db_url.set(username=role, password=password)


def test_bulk_mode_needs_table_ownership_and_row_checks_do_not(non_owner_url):
    with pytest.raises(PermissionDenied, match="--row-checks"):
        seed.seed(non_owner_url, SMALL)
    result = seed.seed(non_owner_url, SMALL, row_checks=True)
    assert result.rows["attempts"] == SMALL.attempts and not result.bulk_mode


def test_unmigrated_database_is_refused_with_the_fix(empty_db_url):
    url = empty_db_url.render_as_string(hide_password=False)
    result = CliRunner().invoke(main, ["seed", "--database-url", url, "--attempts", "10"])
    assert result.exit_code == 2
    assert "schema is not there" in result.stderr and "alp-db migrate" in result.stderr


def test_concurrent_seed_waits_for_the_one_in_progress(db_url):
    holder = make_engine(db_url)
    with holder.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": seed.SEED_LOCK_KEY})
        outcome: list[object] = []
        worker = threading.Thread(target=lambda: outcome.append(seed.seed(db_url, SMALL)))
        worker.start()
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        wait_for_sql(db_url, waiting, done=lambda n: n == 1)
        assert query(db_url, "SELECT count(*) FROM users") == [(0,)]
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": seed.SEED_LOCK_KEY})
        worker.join()
    holder.dispose()
    assert len(outcome) == 1 and outcome[0].rows["attempts"] == SMALL.attempts


def test_lost_connection_while_seeding_is_one_line_exit_2_and_loads_nothing(db_url):
    # the seed waits for the advisory lock held here; its backend is then ended as a server
    # restart ends it (SQLSTATE 57P01): one line, exit 2, nothing loaded, and a rerun works
    holder = make_engine(db_url)
    outcome: dict[str, object] = {}
    args = ["seed", "--database-url", db_url.render_as_string(hide_password=False), "--attempts", "2000"]
    with holder.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": seed.SEED_LOCK_KEY})
        worker = threading.Thread(target=lambda: outcome.update(cli=CliRunner().invoke(main, args)))
        worker.start()
        waiting = (
            "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND NOT l.granted"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        pid = wait_for_sql(db_url, waiting, done=lambda found: found is not None)
        assert conn.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        worker.join()
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": seed.SEED_LOCK_KEY})
    holder.dispose()
    result = outcome["cli"]
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    lines = result.stderr.splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1, lines
    assert lines[0].startswith("alp-db: error: lost the connection to the database while seeding: "), lines
    assert lines[0].endswith(
        "nothing was loaded (the seed is one transaction); once the server is back, run the same"
        " command again"
    )
    assert query(db_url, "SELECT count(*) FROM users") == [(0,)]
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output


def test_command_choices_and_defaults_are_the_library_ones():
    from scripts.cli import seed as command

    options = {p.name: p for p in command.seed.params}
    assert list(seed.SCALES) == command.SCALE_NAMES
    assert options["seed_value"].default == seed.DEFAULT_SEED
    assert options["scale"].default == seed.DEFAULT_SCALE
    assert options["max_existing_learners"].default == seed.DEFAULT_MAX_EXISTING_LEARNERS


def test_generated_enum_values_are_the_models_ones():
    from models.enums import ItemStatus, ItemType
    from scripts.seed import activity, catalogue

    assert set(catalogue.ITEM_TYPE_SHARE) == set(ItemType) == set(catalogue.GUESSING_RANGE)
    assert set(activity.RESPONSE_TIME_FACTOR) == set(ItemType)
    assert set(catalogue.ITEM_STATUS_SHARE) == set(ItemStatus)
    assert sum(catalogue.ITEM_TYPE_SHARE.values()) == pytest.approx(1)


def test_the_command_and_the_package_import_no_numpy():
    import subprocess
    import sys

    probe = "import sys, scripts.seed, scripts.cli.seed; print('numpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout == "False\n"


REFERENCING_SCHEMA = """
CREATE TABLE user_preferences (
    user_id uuid PRIMARY KEY REFERENCES users (id),
    theme text NOT NULL DEFAULT 'light'
);
CREATE TABLE preference_audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES user_preferences (user_id)
);
"""


def seed_command(url: URL, *extra: str) -> object:
    rendered = url.render_as_string(hide_password=False)
    return CliRunner().invoke(
        main,
        ["seed", "--database-url", rendered, "--users", "50", "--items", "40", "--attempts", "300", *extra],
    )


def test_replace_also_empties_and_names_the_tables_that_reference_seeded_ones(db_url):
    query(db_url, REFERENCING_SCHEMA + " SELECT 1")
    assert seed_command(db_url).exit_code == 0
    result = seed_command(db_url, "--replace")
    assert result.exit_code == 0, result.output
    assert "also emptied" in result.stdout
    assert "user_preferences" in result.stdout and "preference_audit" in result.stdout
    assert query(db_url, "SELECT count(*) FROM users WHERE role = 'learner'") == [(50,)]


def test_replace_refuses_to_empty_a_referencing_table_with_rows_unless_forced(db_url):
    query(db_url, REFERENCING_SCHEMA + " SELECT 1")
    seed.seed(db_url, SMALL)
    query(
        db_url,
        "WITH p AS (INSERT INTO user_preferences (user_id) SELECT id FROM users LIMIT 3 RETURNING user_id)"
        " INSERT INTO preference_audit (user_id) SELECT user_id FROM p RETURNING 1",
    )
    before = checksums(db_url)
    refused = seed_command(db_url, "--replace")
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert "preference_audit (references user_preferences)" in refused.stderr
    assert "user_preferences (references users)" in refused.stderr and "--force" in refused.stderr
    assert checksums(db_url) == before
    assert query(
        db_url, "SELECT (SELECT count(*) FROM user_preferences), (SELECT count(*) FROM preference_audit)"
    ) == [(3, 3)]

    forced = seed_command(db_url, "--replace", "--force")
    assert forced.exit_code == 0, forced.output
    assert "user_preferences" in forced.stdout
    assert query(
        db_url, "SELECT (SELECT count(*) FROM user_preferences), (SELECT count(*) FROM preference_audit)"
    ) == [(0, 0)]
    assert query(db_url, "SELECT count(*) FROM users WHERE role = 'learner'") == [(50,)]


@pytest.fixture(scope="module")
def small_scale_shape() -> dict[str, object]:
    """The small preset's attempts as the generator chose them (no database needed)."""
    from scripts.seed.activity import choose_items, plan_sessions
    from scripts.seed.catalogue import build_catalogue

    plan = seed.make_plan("small")
    cat = build_catalogue(plan)
    chosen = choose_items(plan, cat, plan_sessions(plan, cat))
    return {"cat": cat, "chosen": chosen, "shape": chosen.shape(len(cat.learner_ids), len(cat.item_ids))}


def test_small_scale_attempts_are_mostly_first_attempts_with_few_repeats(small_scale_shape):
    shape = small_scale_shape["shape"]
    assert shape["first_attempt_share"] >= 0.90, shape
    assert shape["max_attempts_per_learner_item"] <= 3, shape


def test_small_scale_exposure_control_keeps_every_item_under_a_quarter_of_learners(small_scale_shape):
    import numpy as np

    cat, chosen = small_scale_shape["cat"], small_scale_shape["chosen"]
    n_items = len(cat.item_ids)
    pairs = np.unique(chosen.learner * n_items + chosen.item)
    viewers = np.bincount(pairs % n_items, minlength=n_items)
    assert viewers.max() <= 0.25 * len(cat.learner_ids), viewers.max()
    assert small_scale_shape["shape"]["max_item_exposure"] == round(viewers.max() / len(cat.learner_ids), 4)


def test_small_scale_correct_rate_falls_with_difficulty(small_scale_shape):
    import numpy as np

    cat, chosen = small_scale_shape["cat"], small_scale_shape["chosen"]
    by_difficulty = np.argsort(cat.item_b[chosen.item], kind="stable")
    rate = [part.mean() for part in np.array_split(chosen.correct[by_difficulty], 3)]
    assert rate[0] > rate[1] > rate[2], rate


def test_selection_is_the_same_for_the_same_seed_and_differs_for_another():
    from scripts.seed.activity import choose_items, plan_sessions
    from scripts.seed.catalogue import build_catalogue

    def items(plan):  # type: ignore[no-untyped-def]
        cat = build_catalogue(plan)
        return choose_items(plan, cat, plan_sessions(plan, cat))

    one, two, other = (
        items(SMALL),
        items(SMALL),
        items(seed.make_plan(users=150, items=120, attempts=4_000, seed=8)),
    )
    assert (one.item == two.item).all() and (one.correct == two.correct).all()
    assert len(one.item) == len(other.item) and (one.item != other.item).any()


def test_seed_command_prints_the_shape_of_the_data(db_url):
    result = seed_command(db_url)
    assert result.exit_code == 0, result.output
    assert "first attempts" in result.stdout and "most used item seen by" in result.stdout
    assert "attempts per partition: attempts_2024" in result.stdout
