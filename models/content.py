"""What learners practise: skills (knowledge components) and items with IRT parameters."""

from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, CreatedAt, UpdatedAt, UuidPk
from models.enums import ITEM_STATUS, ITEM_TYPE, ItemStatus, ItemType


class Skill(Base):
    __tablename__ = "skills"

    id: Mapped[UuidPk]
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # A hierarchy: deleting a parent makes its children roots rather than deleting them.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("skills.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    __table_args__ = (CheckConstraint("parent_id <> id", name="not_own_parent"),)


class Item(Base):
    __tablename__ = "items"

    id: Mapped[UuidPk]
    item_type: Mapped[ItemType] = mapped_column(ITEM_TYPE)
    status: Mapped[ItemStatus] = mapped_column(ITEM_STATUS, server_default=text("'draft'"))
    stem: Mapped[str] = mapped_column(Text)
    # Three-parameter logistic model: difficulty b, discrimination a, pseudo-guessing c.
    difficulty: Mapped[float] = mapped_column(server_default=text("0"))
    discrimination: Mapped[float] = mapped_column(server_default=text("1"))
    guessing: Mapped[float] = mapped_column(server_default=text("0"))
    # Authors come and go; their items stay.
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    __table_args__ = (
        CheckConstraint("difficulty BETWEEN -5 AND 5", name="difficulty_range"),
        CheckConstraint("discrimination > 0 AND discrimination <= 4", name="discrimination_range"),
        CheckConstraint("guessing >= 0 AND guessing <= 0.5", name="guessing_range"),
        # Adaptive selection looks for active items near a learner's ability.
        Index(
            "ix_items_active_difficulty",
            "difficulty",
            postgresql_where=text("status = 'active'::item_status"),
        ),
    )


class ItemSkill(Base):
    """Which skills an item exercises (a Q-matrix row), with a weight."""

    __tablename__ = "item_skills"

    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    # A skill still used by items cannot be deleted: remap the items first.
    skill_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("skills.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    weight: Mapped[float] = mapped_column(server_default=text("1"))

    __table_args__ = (CheckConstraint("weight > 0 AND weight <= 1", name="weight_range"),)
