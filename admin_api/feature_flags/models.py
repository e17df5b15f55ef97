from __future__ import annotations

import uuid

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from admin_api.core.db import IdMixin, TimestampMixin
from admin_api.extensions import db

KEY_PATTERN = r"^[a-z][a-z0-9_.-]{1,63}$"
FULL_ROLLOUT = 10_000  # rollouts are stored in hundredths of a percent: 0.01 % resolution


def as_percentage(basis_points: int | None) -> int | float | None:
    """Hundredths of a percent as the API writes a percentage: 25, 12.5, 0.01."""
    if basis_points is None:
        return None
    return basis_points // 100 if basis_points % 100 == 0 else basis_points / 100


class FeatureFlag(IdMixin, TimestampMixin, db.Model):
    """A platform-wide switch. Hard-deleted: its audit events keep what it was."""

    __tablename__ = "feature_flags"
    __table_args__ = (
        CheckConstraint(f"rollout_basis_points BETWEEN 0 AND {FULL_ROLLOUT}", name="rollout_range"),
    )

    key: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    description: Mapped[str] = mapped_column(String(1000), nullable=False, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # None: no rollout (everyone gets `enabled`); else the share of subjects that get it, in 1/100 %.
    rollout_basis_points: Mapped[int | None] = mapped_column(Integer)
    # Bumped by every change, override changes included (they touch the flag row).
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}


class FeatureFlagOverride(TimestampMixin, db.Model):
    """One tenant's forced value of one flag. The pair is the key: the database refuses a second one."""

    __tablename__ = "feature_flag_overrides"
    __table_args__ = (Index("ix_feature_flag_overrides_tenant", "tenant_id", "flag_id"),)

    flag_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("feature_flags.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False)
