from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from admin_api.core.db import IdMixin, TimestampMixin, UTCDateTime, utcnow
from admin_api.extensions import db


class AuditEvent(IdMixin, TimestampMixin, db.Model):
    """One state change or auth event. Append-only: nothing updates or deletes rows."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_occurred", "occurred_at", "id"),
        Index("ix_audit_events_tenant_occurred", "tenant_id", "occurred_at", "id"),
    )

    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    action: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    # No foreign keys: the log outlives what it talks about and must never block a change.
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    actor_email: Mapped[str | None] = mapped_column(String(320))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64), index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    request_id: Mapped[str | None] = mapped_column(String(128))
    changes: Mapped[dict | None] = mapped_column(JSON)
