"""Tables of the migration runtime itself."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Identity, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, CreatedAt


class MigrationHistory(Base):
    """One row per revision applied or rolled back, successful or not.

    Created by the migration runtime before the first revision runs (like
    alembic_version), so revision 0001 is recorded too; not part of any revision.
    """

    __tablename__ = "migration_history"
    __table_args__ = (
        CheckConstraint("direction IN ('upgrade', 'downgrade')", name="direction_valid"),
        CheckConstraint("duration_ms >= 0", name="duration_non_negative"),
        Index("ix_migration_history_applied_at", "applied_at"),
        {"info": {"owned_by": "runtime"}},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    revision: Mapped[str] = mapped_column(String(32))
    migration_name: Mapped[str] = mapped_column(String(255))
    direction: Mapped[str] = mapped_column(String(10))
    checksum: Mapped[str | None] = mapped_column(String(64))
    applied_at: Mapped[CreatedAt]
    duration_ms: Mapped[int | None]
    success: Mapped[bool]
    error_message: Mapped[str | None] = mapped_column(Text)
    applied_by: Mapped[str] = mapped_column(String(128), server_default=text("CURRENT_USER"))
