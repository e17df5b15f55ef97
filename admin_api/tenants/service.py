"""Tenant rules: who sees which tenant, create, rename."""
from __future__ import annotations

import uuid

from sqlalchemy import or_, select

from admin_api.core import audit
from admin_api.core.api import check_if_match
from admin_api.core.authz import PLATFORM, allowed, authorize, require_visible
from admin_api.core.errors import Conflict, NotFound
from admin_api.core.pagination import ResultPage, paginate
from admin_api.extensions import db
from admin_api.tenants.models import Tenant

SORT_COLUMNS = {"name": Tenant.name, "slug": Tenant.slug, "created_at": Tenant.created_at}


def snapshot(tenant: Tenant) -> dict:
    return {"name": tenant.name, "slug": tenant.slug, "status": tenant.status}


def contains(column, text: str):
    """Case-insensitive 'contains' with LIKE wildcards in the text taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def list_tenants(*, actor, args: dict) -> ResultPage:
    stmt = select(Tenant)
    if not allowed(actor, "tenants:list", PLATFORM):
        stmt = stmt.where(Tenant.id == actor.tenant_id)  # everyone else sees their own tenant
    if "status" in args:
        stmt = stmt.where(Tenant.status == args["status"])
    if "q" in args:
        stmt = stmt.where(or_(contains(Tenant.name, args["q"]), contains(Tenant.slug, args["q"])))
    return paginate(stmt, args=args, sort_columns=SORT_COLUMNS, id_column=Tenant.id)


def get_tenant(*, actor, tenant_id: uuid.UUID) -> Tenant:
    tenant = db.session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("Tenant not found.")
    require_visible(actor, "tenants:read", tenant, what="Tenant")
    return tenant


def find_tenant(tenant_id: uuid.UUID) -> Tenant | None:
    """The tenant with this id, or None; no authorization (for rules that ask their own question about it)."""
    return db.session.get(Tenant, tenant_id)


def tenants_by_id(tenant_ids) -> dict[uuid.UUID, Tenant]:
    """The tenants among these ids, by id; no authorization (as find_tenant)."""
    ids = set(tenant_ids)
    return {t.id: t for t in db.session.scalars(select(Tenant).where(Tenant.id.in_(ids)))} if ids else {}


def create_tenant(*, actor, name: str, slug: str) -> Tenant:
    authorize(actor, "tenants:create", PLATFORM)
    if db.session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None:
        raise Conflict("A tenant with this slug exists (deleted tenants keep their slug).", errors={"slug": ["Already taken."]})
    tenant = Tenant(name=name, slug=slug, status="active")
    db.session.add(tenant)
    db.session.flush()
    audit.record("tenant.create", actor=actor, tenant_id=tenant.id, target_type="tenant", target_id=tenant.id,
                 changes={"after": snapshot(tenant)})
    db.session.commit()
    return tenant


def update_tenant(*, actor, tenant_id: uuid.UUID, changes: dict, if_match=None) -> Tenant:
    tenant = get_tenant(actor=actor, tenant_id=tenant_id)
    authorize(actor, "tenants:update", tenant)
    check_if_match(if_match, tenant)
    before = snapshot(tenant)
    for field, value in changes.items():
        setattr(tenant, field, value)
    after = snapshot(tenant)
    if after != before:
        db.session.flush()
        audit.record("tenant.update", actor=actor, tenant_id=tenant.id, target_type="tenant", target_id=tenant.id,
                     changes=audit.diff(before, after))
    db.session.commit()
    return tenant
