"""Reading the audit log: tenant admins see their tenant's events only."""
from __future__ import annotations

import uuid

from sqlalchemy import select

from admin_api.audit.models import AuditEvent
from admin_api.core.authz import require_visible
from admin_api.core.errors import NotFound
from admin_api.core.pagination import ResultPage, paginate
from admin_api.extensions import db
from admin_api.tenants import service as tenants

FILTERS = ("actor_id", "action", "target_type", "target_id")


def list_events(*, actor, args: dict) -> ResultPage:
    scope = tenants.list_scope(actor=actor, action="audit:list", tenant_id=args.get("tenant_id"))
    stmt = select(AuditEvent) if scope is None else select(AuditEvent).where(AuditEvent.tenant_id == scope.id)
    # The log is the largest table: unfiltered, its total may be PostgreSQL's estimate (see paginate).
    filtered = scope is not None or any(name in args for name in ("since", "until", *FILTERS))
    for name in FILTERS:
        if name in args:
            stmt = stmt.where(getattr(AuditEvent, name) == args[name])
    if "since" in args:
        stmt = stmt.where(AuditEvent.occurred_at >= args["since"])
    if "until" in args:
        stmt = stmt.where(AuditEvent.occurred_at < args["until"])
    return paginate(stmt, args=args, sort_columns={"occurred_at": AuditEvent.occurred_at}, id_column=AuditEvent.id,
                    estimate_table=None if filtered else "audit_events")


def get_event(*, actor, event_id: uuid.UUID) -> AuditEvent:
    event = db.session.get(AuditEvent, event_id)
    if event is None:
        raise NotFound("Audit event not found.")
    require_visible(actor, "audit:read", event, what="Audit event")
    return event
