"""Named PostgreSQL enum types, declared once and used by the models and the SQL."""

from __future__ import annotations

import enum

from sqlalchemy.dialects.postgresql import ENUM


class UserRole(str, enum.Enum):
    learner = "learner"
    instructor = "instructor"
    admin = "admin"


class ItemType(str, enum.Enum):
    multiple_choice = "multiple_choice"
    true_false = "true_false"
    short_answer = "short_answer"
    numeric = "numeric"


class ItemStatus(str, enum.Enum):
    draft = "draft"
    active = "active"
    retired = "retired"


class SessionStatus(str, enum.Enum):
    active = "active"
    completed = "completed"
    abandoned = "abandoned"


def pg_enum(py_enum: type[enum.Enum], name: str) -> ENUM:
    """The PostgreSQL type for a Python enum; values (not member names) are stored."""
    return ENUM(
        py_enum,
        name=name,
        values_callable=lambda members: [m.value for m in members],
        create_type=False,  # created by revision 0001, never implicitly
    )


USER_ROLE = pg_enum(UserRole, "user_role")
ITEM_TYPE = pg_enum(ItemType, "item_type")
ITEM_STATUS = pg_enum(ItemStatus, "item_status")
SESSION_STATUS = pg_enum(SessionStatus, "session_status")
