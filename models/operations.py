"""Tables of the migration runtime itself."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Mapped

from models.base import Base
from scripts.migrations.history import define_table


class MigrationHistory(Base):
    """One row per revision applied or rolled back, successful or not.

    Created by the migration runtime before the first revision runs (like alembic_version),
    so revision 0001 is recorded too; not part of any revision. The runtime owns the
    definition (scripts.migrations.history) so that a migration run need not import the ORM.
    """

    __table__ = define_table(Base.metadata)

    id: Mapped[int]
    revision: Mapped[str]
    migration_name: Mapped[str]
    direction: Mapped[str]
    checksum: Mapped[str | None]
    applied_at: Mapped[dt.datetime]
    duration_ms: Mapped[int | None]
    success: Mapped[bool]
    error_message: Mapped[str | None]
    applied_by: Mapped[str]
