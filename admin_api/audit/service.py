"""Reading the audit log: tenant admins see their tenant's events only."""
from __future__ import annotations

import uuid

from sqlalchemy import select

from admin_api.audit.models import AuditEvent
from admin_api.core.authz import PLATFORM, allowed, authorize, require_visible
from admin_api.core.errors import NotFound
from admin_api.core.pagination import ResultPage, paginate
from admin_api.extensions import db
from admin_api.tenants import service as tenants

FILTERS = ("actor_id", "action", "target_type", "target_id")


def list_events(*, actor, args: dict) -> ResultPage:
    stmt = select(AuditEvent)
    # The log is the largest table: unfiltered, its total may be PostgreSQL's estimate (see paginate).
    filtered = any(name in args for name in ("tenant_id", "since", "until", *FILTERS))
    if "tenant_id" in args:
        tenant = tenants.get_tenant(actor=actor, tenant_id=args["tenant_id"])
        authorize(actor, "audit:list", tenant)
        stmt = stmt.where(AuditEvent.tenant_id == tenant.id)
    elif not allowed(actor, "audit:list", PLATFORM):
        if actor.tenant is None:
            authorize(actor, "audit:list", PLATFORM)
        authorize(actor, "audit:list", actor.tenant)
        stmt = stmt.where(AuditEvent.tenant_id == actor.tenant_id)
        filtered = True
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
