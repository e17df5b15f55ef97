from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from admin_api.core.db import IdMixin, TimestampMixin, UTCDateTime
from admin_api.extensions import db

TENANT_STATUSES = ("active", "deleted")


class Tenant(IdMixin, TimestampMixin, db.Model):
    __tablename__ = "tenants"
    __table_args__ = (CheckConstraint("status IN ('active', 'deleted')", name="status"),)

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    slug: Mapped[str] = mapped_column(String(63), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active", index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Tokens of this tenant's users issued before this instant are refused (tenant delete).
    tokens_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_deleted(self) -> bool:
        return self.status == "deleted"
