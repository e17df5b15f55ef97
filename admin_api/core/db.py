"""Column types and mixins shared by every model."""
from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, TypeDecorator, Uuid, event, exc, update
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


# --- the connection pool ------------------------------------------------------

IDLE_BEFORE_PING = 1.0  # seconds a pooled connection may sit unused and still be trusted without a ping


def ping_connections_left_idle(engine) -> None:
    """pool_pre_ping, but only for a connection that sat in the pool more than IDLE_BEFORE_PING.

    A connection returned a moment ago is alive; pinging it anyway cost every request
    one more round trip to the database. This is HikariCP's rule (it skips the check
    for connections used in the last 500 ms). A dead connection found here is replaced
    at once, with every other connection of the pool opened before it.
    """

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection, record):
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy):
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < IDLE_BEFORE_PING:
            return  # new (just connected), or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.InvalidatePoolError() from error
