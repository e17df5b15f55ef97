from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from admin_api.core.db import IdMixin, TimestampMixin, UTCDateTime, utcnow
from admin_api.extensions import db
from admin_api.tenants.models import Tenant

INVITABLE_ROLES = ("tenant_admin", "member")  # platform admins are never invited: they belong to no tenant
INVITATION_STATUSES = ("pending", "accepted", "revoked", "expired")  # as shown; "expired" is never stored


def pending_key(tenant_id: uuid.UUID, email: str) -> str:
    """The uniqueness key of a pending invitation: one per address and tenant."""
    return f"{tenant_id.hex}:{email}"


class Invitation(IdMixin, TimestampMixin, db.Model):
    """An email invited into a tenant with a role; accepted once with its token, which is stored only as a digest.

    `status` stores pending, accepted or revoked; a pending one past `expires_at`
    shows as expired (`current_status`) without any job having to run.
    `pending_key` is set while pending and NULL otherwise: its unique index lets
    the database refuse a second pending invitation of an address in a tenant.
    """

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'accepted', 'revoked')", name="status"),
        CheckConstraint("role IN ('tenant_admin', 'member')", name="role"),
        CheckConstraint("status = 'pending' OR pending_key IS NULL", name="pending_key_only_while_pending"),
        Index("ix_invitations_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_invitations_created", "created_at", "id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tenants.id"), nullable=False)
    email: Mapped[str] = mapped_column(String(320), nullable=False, index=True)  # normalized: lower case
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    pending_key: Mapped[str | None] = mapped_column(String(400), unique=True)
    token_digest: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    invited_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))  # None: an operator (CLI)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    tenant: Mapped[Tenant] = relationship(lazy="select")

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_expired(self) -> bool:
        return self.status == "pending" and self.expires_at <= utcnow()

    @property
    def current_status(self) -> str:
        return "expired" if self.is_expired else self.status

    @property
    def etag_extra(self) -> dict:
        """The ETag covers the shown status too: expiring changes it without a new version."""
        return {"status": self.current_status}
