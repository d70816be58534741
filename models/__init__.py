"""The declarative models; importing this package makes ``metadata`` complete."""

from models.activity import Attempt, LearningSession, SkillMastery
from models.base import Base, metadata
from models.content import Item, ItemSkill, Skill
from models.enums import ItemStatus, ItemType, SessionStatus, UserRole
from models.operations import MigrationHistory
from models.people import User

__all__ = [
    "Attempt",
    "Base",
    "Item",
    "ItemSkill",
    "ItemStatus",
    "ItemType",
    "LearningSession",
    "MigrationHistory",
    "SessionStatus",
    "Skill",
    "SkillMastery",
    "User",
    "UserRole",
    "metadata",
]
