from __future__ import annotations

import uuid

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from admin_api.core.db import IdMixin, TimestampMixin
from admin_api.extensions import db
from admin_api.tenants.models import Tenant

PLATFORM_SCOPE = uuid.UUID(int=0)  # the scope_id of platform-wide policies (no tenant has this id)


def name_key(tenant_id: uuid.UUID | None, name: str) -> str:
    """The uniqueness key: one name per scope (a tenant, or the platform), whatever its case."""
    return f"{tenant_id.hex if tenant_id else 'platform'}:{name.casefold()}"


class Policy(IdMixin, TimestampMixin, db.Model):
    """A registered Cedar policy: of one tenant, or platform-wide (tenant_id NULL)."""

    __tablename__ = "policies"
    __table_args__ = (Index("ix_policies_tenant_created", "tenant_id", "created_at", "id"),)

    tenant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    name_key: Mapped[str] = mapped_column(String(300), nullable=False, unique=True)
    description: Mapped[str] = mapped_column(String(2000), nullable=False, default="")
    source: Mapped[str] = mapped_column(Text, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    tenant: Mapped[Tenant | None] = relationship(lazy="select")

    __mapper_args__ = {"version_id_col": version}


class PolicySetVersion(TimestampMixin, db.Model):
    """The version of one scope's set of registered policies, moved in the transaction of every change.

    `revision` is new with each change and never repeats (not even if a backup rewinds `version`):
    it is what the per-process caches of parsed policy sets are keyed by (admin_api.policy.live).
    """

    __tablename__ = "policy_set_versions"

    scope_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)  # a tenant id, or PLATFORM_SCOPE
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    revision: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
