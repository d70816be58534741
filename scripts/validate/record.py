"""Record what revisions own: ``python -m scripts.validate.record > scripts/validate/owned_objects.py``.

Run it against a database freshly migrated to head whenever a revision adds or changes a
trigger, function, view or default partition, then ``ruff format`` the file and review the
diff. Kept apart from the package so that importing the validator does not import click.
"""

from __future__ import annotations

import click

from scripts.cli.common import database_url_option, handle_errors
from scripts.validate.owned import capture, render_module


@click.command()
@database_url_option
@handle_errors
def main(database_url: str | None) -> None:
    """Print owned_objects.py for the database at DATABASE_URL, which must be at head."""
    from scripts.config import resolve_url
    from scripts.db import connect, make_engine
    from scripts.migrations import versions_dir

    engine = make_engine(resolve_url(database_url))
    try:
        with connect(engine) as conn:
            click.echo(render_module(capture(conn, versions_dir())), nl=False)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
