"""Audit events: record() adds one to the caller's transaction (never committed here), record_apart() commits one alone."""
from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from admin_api.audit.models import AuditEvent
from admin_api.core.context import request_meta
from admin_api.extensions import db

# Never stored in `changes`, whatever a caller passes.
SECRET_FIELDS = {"password", "password_hash", "new_password", "current_password", "token", "token_hash",
                 "reset_token", "access_token", "refresh_token", "secret"}


def diff(before: dict, after: dict) -> dict:
    """Before/after of the fields that changed."""
    changed = {k for k in after if before.get(k) != after.get(k)}
    return {"before": {k: before.get(k) for k in sorted(changed)}, "after": {k: after[k] for k in sorted(changed)}}


def _scrub(value):
    if isinstance(value, dict):
        return {k: ("***" if k in SECRET_FIELDS else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _event(action: str, *, actor=None, actor_email: str | None = None, tenant_id=None,
           target_type: str | None = None, target_id=None, changes: dict | None = None) -> AuditEvent:
    return AuditEvent(
        action=action,
        actor_id=getattr(actor, "id", None),
        actor_email=getattr(actor, "email", None) or actor_email,
        tenant_id=tenant_id,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        changes=_scrub(changes) if changes else None,
        **request_meta(),
    )


def record(action: str, **fields) -> AuditEvent:
    """Add one audit event to the session; the caller commits it with its change.

    Fields: actor (or actor_email), tenant_id, target_type, target_id, changes.
    """
    event = _event(action, **fields)
    db.session.add(event)
    return event


def record_apart(action: str, **fields) -> None:
    """Write one audit event in a transaction of its own, committed now (fields as for record()).

    For the events of a refusal (a policy that failed to evaluate): the request's
    own transaction is rolled back with it, the event must stay. Call it before
    the request writes anything (on SQLite a second writer would wait for it).
    """
    with Session(db.engine) as session:
        session.add(_event(action, **fields))
        session.commit()
