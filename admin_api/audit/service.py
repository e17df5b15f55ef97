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
    stmt = select(AuditEvent)
    # The log is the largest table: unfiltered, its total may be PostgreSQL's estimate (see paginate).
    tenant_id = tenants.listing_tenant(actor=actor, action="audit:list", tenant_id=args.get("tenant_id"))
    if tenant_id is not None:
        stmt = stmt.where(AuditEvent.tenant_id == tenant_id)
    filtered = tenant_id is not None or any(name in args for name in ("since", "until", *FILTERS))
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
