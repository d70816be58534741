"""``alp-db seed``: deterministic synthetic data, bulk-loaded with COPY."""

from __future__ import annotations

import sys
from typing import Any

import click

from scripts.cli.common import database_url_option, format_option, handle_errors, render
from scripts.seed.presets import (  # numpy-free: --help stays light
    DEFAULT_MAX_EXISTING_LEARNERS,
    DEFAULT_SCALE,
    DEFAULT_SEED,
    SCALES,
)

SCALE_NAMES = list(SCALES)


@click.command()
@database_url_option
@click.option("--scale", type=click.Choice(SCALE_NAMES), default=DEFAULT_SCALE, show_default=True,
              help="Preset sizes: " + ", ".join(f"{name} {s.users:,} learners/{s.attempts:,} attempts"
                                              for name, s in SCALES.items()) + ".")  # fmt: skip
@click.option("--users", type=click.IntRange(min=1), default=None, help="Learners (overrides the scale).")
@click.option("--items", type=click.IntRange(min=1), default=None, help="Items (overrides the scale).")
@click.option("--attempts", type=click.IntRange(min=0), default=None, help="Attempts (overrides the scale).")
@click.option("--seed", "seed_value", type=click.IntRange(min=0), default=DEFAULT_SEED, show_default=True,
              help="Random seed: the same seed gives the same rows, ids included.")  # fmt: skip
@click.option("--force", is_flag=True,
              help="Seed even a database that looks like production (alp_db.environment = 'production',"
                   " or more learners than --max-existing-learners).")  # fmt: skip
@click.option(
    "--replace",
    is_flag=True,
    help="Empty the platform tables (TRUNCATE, every row) and the tables that reference them before"
    " seeding, in the same transaction; a referencing table holding rows needs --force.",
)
@click.option("--max-existing-learners", type=click.IntRange(min=0), default=DEFAULT_MAX_EXISTING_LEARNERS,
              show_default=True,
              help="More existing learners than this means production.")  # fmt: skip
@click.option(
    "--row-checks",
    is_flag=True,
    help="Let every trigger and foreign key fire per row (slower; no table ownership needed).",
)
@format_option
@handle_errors
def seed(
    database_url: str | None,
    scale: str,
    users: int | None,
    items: int | None,
    attempts: int | None,
    seed_value: int,
    force: bool,
    replace: bool,
    max_existing_learners: int,
    row_checks: bool,
    fmt: str,
) -> None:
    """Fill the database with realistic, reproducible synthetic data."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from scripts import seed as seeding

    plan = seeding.make_plan(scale, users=users, items=items, attempts=attempts, seed=seed_value)
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task("generating and loading attempts", total=plan.attempts)

        def progress(stage: str, rows: int) -> None:
            if stage == seeding.FINISHING:
                bar.update(task, description=stage)
            elif stage == "attempts":
                bar.update(task, advance=rows)

        result = seeding.seed(
            database_url,
            plan,
            force=force,
            replace=replace,
            max_existing_learners=max_existing_learners,
            row_checks=row_checks,
            progress=progress,
        )
    if fmt == "json":
        from dataclasses import asdict

        render(asdict(result), fmt)
        return
    rows = [{"table": name, "rows": count} for name, count in result.rows.items()]
    render(rows, fmt, title=f"seed {result.seed}: {sum(result.rows.values())} rows in {result.seconds:.1f} s")
    click.echo(describe_shape(result.shape))
    if result.cleared:
        click.echo(f"also emptied (they reference seeded tables): {', '.join(result.cleared)}")


def describe_shape(shape: dict[str, Any]) -> str:
    """The seed's summary line: how adaptive the attempts look, and where they went."""
    parts = []
    if "first_attempt_share" in shape:
        parts.append(f"first attempts {float(shape['first_attempt_share']):.1%}")
        parts.append(f"at most {shape['max_attempts_per_learner_item']} attempts per learner and item")
        parts.append(f"most used item seen by {float(shape['max_item_exposure']):.1%} of learners")
    partitions = shape.get("attempts_per_partition") or {}
    parts.append("attempts per partition: " + ", ".join(f"{k} {v:,}" for k, v in partitions.items()))
    return "; ".join(parts)
