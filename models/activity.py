"""What learners do: sessions, attempts (partitioned by time) and per-skill mastery."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, CreatedAt, UpdatedAt
from models.enums import SESSION_STATUS, SessionStatus


class LearningSession(Base):
    __tablename__ = "learning_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    # Erasing a learner erases their activity.
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[SessionStatus] = mapped_column(SESSION_STATUS, server_default=text("'active'"))
    started_at: Mapped[CreatedAt]
    ended_at: Mapped[dt.datetime | None]
    updated_at: Mapped[UpdatedAt]

    __table_args__ = (
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ends_after_start"),
        Index("ix_learning_sessions_user_id_started_at", "user_id", text("started_at DESC")),
    )


class Attempt(Base):
    """One answer to one item: append-only, RANGE-partitioned by attempted_at.

    The primary key includes the partition key, as PostgreSQL requires of a unique
    constraint on a partitioned table.
    """

    __tablename__ = "attempts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    attempted_at: Mapped[dt.datetime] = mapped_column(primary_key=True, server_default=text("now()"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # History outlives content: an item with attempts is retired, never deleted.
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id", ondelete="RESTRICT"))
    # NO ACTION (checked at the end of the statement) lets a learner's erasure cascade to
    # both their sessions and their attempts, while a lone session delete is refused.
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("learning_sessions.id", ondelete="NO ACTION"), index=True
    )
    is_correct: Mapped[bool]
    score: Mapped[float]
    response_time_ms: Mapped[int]
    answer: Mapped[dict[str, Any] | None]

    __table_args__ = (
        CheckConstraint("score >= 0 AND score <= 1", name="score_range"),
        CheckConstraint("response_time_ms >= 0", name="response_time_non_negative"),
        # A learner's recent attempts.
        Index("ix_attempts_user_id_attempted_at", "user_id", text("attempted_at DESC")),
        # An item's attempts (calibration, item statistics).
        Index("ix_attempts_item_id_attempted_at", "item_id", "attempted_at"),
        # Time-range scans over the whole history: tiny, and attempts arrive in time order.
        Index("brin_attempts_attempted_at", "attempted_at", postgresql_using="brin"),
        {"postgresql_partition_by": "RANGE (attempted_at)"},
    )


class SkillMastery(Base):
    """A learner's estimated probability of having mastered a skill."""

    __tablename__ = "skill_mastery"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    skill_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    mastery: Mapped[float] = mapped_column(server_default=text("0"))
    attempts_count: Mapped[int] = mapped_column(server_default=text("0"))
    correct_count: Mapped[int] = mapped_column(server_default=text("0"))
    updated_at: Mapped[UpdatedAt]

    __table_args__ = (
        CheckConstraint("mastery >= 0 AND mastery <= 1", name="mastery_range"),
        CheckConstraint("correct_count >= 0 AND correct_count <= attempts_count", name="counts_consistent"),
    )
