"""Users and their grants: a role in an area (and everything below it) or in the whole country."""

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sijill.core.db import Base


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # Argon2id; None for a user who signs in only through the OIDC identity provider.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # A password set by someone else (install, an administrator's reset): it only lets its
    # holder choose their own.
    password_one_time: Mapped[bool] = mapped_column(Boolean, default=False)
    # A service account authenticates with a key (stored hashed in password_hash), for the CLI.
    is_service: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped on disable and password change: refresh tokens issued before stop working.
    token_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(64))


class RoleGrant(Base):
    __tablename__ = "role_grant"
    __table_args__ = (UniqueConstraint("user_id", "role", "area_id", name="uq_role_grant"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(24))
    # None: the whole country.
    area_id: Mapped[int | None] = mapped_column(ForeignKey("area.id"))
