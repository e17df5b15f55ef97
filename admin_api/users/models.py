from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from admin_api.core.db import IdMixin, TimestampMixin, UTCDateTime
from admin_api.extensions import db
from admin_api.tenants.models import Tenant

ROLES = ("platform_admin", "tenant_admin", "member")
USER_STATUSES = ("active", "disabled")


def email_key(tenant_id: uuid.UUID | None, email: str) -> str:
    """The uniqueness key: one address per tenant (platform admins share one scope)."""
    return f"{tenant_id.hex if tenant_id else 'platform'}:{email}"


class User(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('platform_admin', 'tenant_admin', 'member')", name="role"),
        CheckConstraint("status IN ('active', 'disabled')", name="status"),
        CheckConstraint("(role = 'platform_admin') = (tenant_id IS NULL)", name="tenant_matches_role"),
        Index("ix_users_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_users_created", "created_at", "id"),
    )

    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("tenants.id"))
    email: Mapped[str] = mapped_column(String(320), nullable=False, index=True)  # normalized: lower case
    email_key: Mapped[str] = mapped_column(String(400), nullable=False, unique=True)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Tokens issued before this instant are refused (disable, password reset, revoke-all).
    tokens_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    tenant: Mapped[Tenant | None] = relationship(lazy="select")

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def etag_extra(self) -> dict:
        """The ETag covers the sign-in time too: it is written without a new version."""
        return {"last_login_at": self.last_login_at.isoformat()} if self.last_login_at is not None else {}


class UserCount(TimestampMixin, db.Model):
    """How many users (of every status) a tenant has: list totals without counting rows.

    Kept by the database itself: triggers on `users` (migration 0007) add the
    rows of every INSERT and take away those of every DELETE, whatever wrote them
    (the service, the bulk seed, an operator's SQL), in the same transaction.
    A user's tenant never changes, so updates leave the counts alone.
    """

    __tablename__ = "user_counts"

    PLATFORM = uuid.UUID(int=0)  # the scope_id counting platform admins (no tenant has this id)

    scope_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)  # a tenant id, or PLATFORM
    users: Mapped[int] = mapped_column(Integer, nullable=False)


class PasswordResetToken(TimestampMixin, db.Model):
    """The one outstanding reset token of a user, as a digest; issuing another replaces it.

    `created_at` is its issue time: like every other token of the user, it dies
    when the user's (or its tenant's) tokens_valid_after moves past it.
    """

    __tablename__ = "password_reset_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
