"""Column types and mixins shared by every model."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, TypeDecorator, Uuid, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from admin_api.extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every database (SQLite stores naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use aware UTC datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)


def dialect_insert(model, session):
    """INSERT with the database's ON CONFLICT clauses (PostgreSQL's or SQLite's: both speak them)."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def guarded_update(entity, *conditions, **values) -> bool:
    """Change one versioned row in one UPDATE whose conditions the database checks as it writes.

    `conditions` say what must still hold (e.g. `User.status == "disabled"`): when a
    concurrent change won, nothing is written and the answer is False. When done,
    the row gets a new version and `entity` is refreshed.
    """
    model = type(entity)
    stmt = (update(model).where(model.id == entity.id, *conditions)
            .values(**{"updated_at": utcnow(), **values}, version=model.version + 1)
            .execution_options(synchronize_session=False))
    done = db.session.execute(stmt).rowcount == 1
    if done:
        db.session.refresh(entity)
    return done
