"""What the runtime relies on in Alembic: this file fails loudly when a supported Alembic changes it.

pyproject.toml pins the Alembic versions these hold for; raising the upper bound means running
this file against the new release first.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import pytest
from alembic import command
from alembic.config import CommandLine, Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script, ScriptDirectory
from packaging.version import Version

from scripts.migrations import commands
from scripts.migrations.api import alembic_config


def public_commands() -> set[str]:
    return {
        name
        for name, fn in vars(command).items()
        if inspect.isfunction(fn) and fn.__module__ == command.__name__ and not name.startswith("_")
    }


def test_installed_alembic_is_within_the_pinned_range():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from packaging.specifiers import SpecifierSet

    from tests.project import REPO_ROOT

    pins = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [pin for pin in pins if pin.startswith("alembic>")]
    assert Version(version("alembic")) in SpecifierSet(spec.removeprefix("alembic")), spec


def test_every_alembic_command_is_classified():
    """A command added by a new Alembic must be placed in commands.KNOWN (it would run as unknown,
    taking the lock and loading models, until it is)."""
    assert public_commands() == set(commands.KNOWN), "classify the new alembic.command functions"


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["upgrade", "head"], "upgrade"),
        (["downgrade", "-1"], "downgrade"),
        (["stamp", "head"], "stamp"),
        (["ensure_version"], "ensure_version"),
        (["check"], "check"),
        (["revision", "-m", "x", "--autogenerate"], "revision"),
        (["current"], "current"),
    ],
)
def test_alembic_command_line_names_the_command_function_in_cmd_opts(argv: list[str], name: str):
    """``alembic <cmd>`` sets ``cmd_opts.cmd = (alembic.command.<cmd>, positional, kwarg)``."""
    options = CommandLine().parser.parse_args(argv)
    assert options.cmd[0] is getattr(command, name)
    config = Config(cmd_opts=options)
    recognised = commands.recognise(config)
    assert recognised.name == name
    assert recognised.kind is commands.KNOWN[name]


def test_a_command_the_runtime_cannot_tell_changes_the_schema():
    config = alembic_config()  # a program calling alembic.command.upgrade(config) itself
    unknown = commands.recognise(config)
    assert unknown.kind is commands.Kind.UNKNOWN
    assert unknown.changes_schema and unknown.runs_revisions and unknown.compares_models
    foreign = Config(cmd_opts=CommandLine().parser.parse_args(["upgrade", "head"]))
    foreign.cmd_opts.cmd = (lambda *a: None, [], [])  # type: ignore[union-attr]
    assert commands.recognise(foreign).kind is commands.Kind.UNKNOWN


def test_the_public_hooks_the_runtime_uses_exist():
    configure = inspect.signature(EnvironmentContext.configure).parameters
    for option in ("connection", "url", "transaction_per_migration", "on_version_apply", "literal_binds"):
        assert option in configure, option
    for method in ("is_offline_mode", "get_x_argument", "get_context", "run_migrations"):
        assert callable(getattr(EnvironmentContext, method)), method
    assert hasattr(MigrationContext, "configure") and hasattr(MigrationContext, "get_current_heads")
    # StepHooks: one begin_transaction per revision with transaction_per_migration, and the
    # autocommit_block that revisions reach through op.get_context()
    assert "self.begin_transaction(" in inspect.getsource(MigrationContext.run_migrations)
    assert callable(MigrationContext.autocommit_block) and callable(MigrationContext.begin_transaction)
    assert "destination_rev" in inspect.getsource(EnvironmentContext.get_revision_argument)
    info = inspect.signature(MigrationInfo.__init__).parameters
    assert {"is_upgrade", "is_stamp", "up_revisions", "down_revisions"} <= set(info)
    assert isinstance(MigrationInfo.up_revision, property)
    script = ScriptDirectory.from_config(alembic_config())
    base = script.get_revision(script.get_bases()[0])
    assert isinstance(base, Script) and base.path and base.module is not None
    assert isinstance(base.nextrev, frozenset)
