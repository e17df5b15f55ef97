from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from admin_api.core.db import TimestampMixin
from admin_api.extensions import db

EDITABLE = ("title", "bio", "phone", "locale", "timezone")  # plus display_name, which lives on the user


class UserProfile(TimestampMixin, db.Model):
    """A user's profile beyond its name; created by its first change (no row: every field empty).

    The photo columns name a file of the uploads folder (a server-made name,
    unique: two profiles never share a file) and describe it.
    """

    __tablename__ = "user_profiles"
    __table_args__ = (
        CheckConstraint("(photo_name IS NULL) = (photo_etag IS NULL) AND (photo_name IS NULL) = "
                        "(photo_content_type IS NULL)", name="photo_complete"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), primary_key=True)
    title: Mapped[str | None] = mapped_column(String(100))
    bio: Mapped[str | None] = mapped_column(String(2000))
    phone: Mapped[str | None] = mapped_column(String(16))  # E.164: + and at most 15 digits
    locale: Mapped[str | None] = mapped_column(String(64))  # a BCP 47 tag, standardized
    timezone: Mapped[str | None] = mapped_column(String(64))  # an IANA name
    photo_name: Mapped[str | None] = mapped_column(String(128), unique=True)
    photo_content_type: Mapped[str | None] = mapped_column(String(32))
    photo_etag: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of the stored file
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # 0: never changed

    __mapper_args__ = {"version_id_col": version}


@dataclass(frozen=True)
class Profile:
    """What the API shows: the user's display name and its profile row's fields.

    `version` covers both rows, so the ETag changes when either does.
    """

    user_id: uuid.UUID
    display_name: str
    title: str | None
    bio: str | None
    phone: str | None
    locale: str | None
    timezone: str | None
    photo_etag: str | None
    updated_at: datetime
    version: str

    @property
    def id(self) -> uuid.UUID:
        return self.user_id

    @property
    def photo_url(self) -> str | None:
        """The photo's address, with its version in the query: a new photo is a new URL for any cache."""
        if self.photo_etag is None:
            return None
        return f"/api/v1/users/{self.user_id}/profile/photo?v={self.photo_etag[:16]}"


@dataclass(frozen=True)
class Photo:
    """A stored photo, read for sending."""

    data: bytes
    content_type: str
    etag: str
