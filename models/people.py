"""Learners, instructors and administrators."""

from __future__ import annotations

from sqlalchemy import CHAR, CheckConstraint, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, CreatedAt, UpdatedAt, UuidPk
from models.enums import USER_ROLE, UserRole

# RFC 5321 caps an address at 254 characters in practice; the shape check is deliberately
# loose (one @, a dot in the domain) — deliverability is the mailer's job, not the schema's.
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"


class User(Base):
    __tablename__ = "users"

    id: Mapped[UuidPk]
    email: Mapped[str] = mapped_column(String(254))
    display_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[UserRole] = mapped_column(USER_ROLE, server_default=text("'learner'"))
    # ISO 3166-1 alpha-2, upper case; NULL when unknown.
    country_code: Mapped[str | None] = mapped_column(CHAR(2))
    # Latent ability (theta) on the IRT logit scale, kept by the adaptive engine.
    ability: Mapped[float] = mapped_column(server_default=text("0"))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    __table_args__ = (
        CheckConstraint(f"email ~* '{EMAIL_PATTERN}'", name="email_format"),
        CheckConstraint("country_code ~ '^[A-Z]{2}$'", name="country_code_iso"),
        CheckConstraint("ability BETWEEN -6 AND 6", name="ability_range"),
        # One account per address whatever its case (the trigger also lower-cases it).
        Index("uq_users_email_lower", func.lower(email), unique=True),
    )
