"""The cyclic collector: paused for a command's start-up and for a comparison, always put back."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

import scripts.cli
import scripts.db.engine
from scripts import gc_pause
from scripts.cli import main


@pytest.fixture
def collector() -> Iterator[None]:
    """Each test starts with the collector on and nothing frozen, and leaves it so."""
    was = gc.isenabled()
    gc.enable()
    yield
    gc.unfreeze()
    (gc.enable if was else gc.disable)()


def test_start_up_is_paused_until_the_first_engine_and_what_it_made_is_frozen(collector):
    with gc_pause.until_connecting():
        assert not gc.isenabled()
        assert gc.get_freeze_count() == 0
        gc_pause.resume()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0  # the start-up's objects: never walked again
        gc_pause.resume()  # a second engine changes nothing
        assert gc.isenabled()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # the command is over: collectable again


def test_a_command_that_never_connects_gets_the_collector_back_at_its_end(collector):
    with gc_pause.until_connecting():
        assert not gc.isenabled()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_comparison_inside_start_up_stays_paused_when_it_connects(collector):
    with gc_pause.until_connecting(), gc_pause.paused_gc():
        gc_pause.resume()  # validate_schema makes its engine inside its own pause
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off_and_nothing_is_frozen(collector):
    gc.disable()
    with gc_pause.until_connecting():
        gc_pause.resume()
        assert not gc.isenabled()
        with gc_pause.paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_the_cli_imports_a_command_paused_and_resumes_at_its_engine(collector, monkeypatch, db_url):
    seen: dict[str, bool] = {}
    import_module = scripts.cli.importlib.import_module
    create_engine = scripts.db.engine.create_engine

    def importing(name: str):
        seen.setdefault("importing the command", gc.isenabled())
        return import_module(name)

    def creating(*args, **kwargs):
        seen.setdefault("first engine", gc.isenabled())
        return create_engine(*args, **kwargs)

    monkeypatch.setattr(scripts.cli.importlib, "import_module", importing)
    monkeypatch.setattr(scripts.db.engine, "create_engine", creating)
    url = db_url.render_as_string(hide_password=False)
    result = CliRunner().invoke(main, ["test-connection"], env={"DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert seen == {"importing the command": False, "first engine": True}
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
