"""Tenant rules: who sees which tenant, create, rename, soft delete and restore."""
from __future__ import annotations

import uuid

from sqlalchemy import or_, select

from admin_api.core import audit
from admin_api.core.api import check_if_match
from admin_api.core.authz import PLATFORM, allowed, authorize, require_visible
from admin_api.core.db import guarded_update, utcnow
from admin_api.core.errors import AppError, Conflict, NotFound
from admin_api.core.pagination import ResultPage, paginate
from admin_api.extensions import db
from admin_api.tenants.models import Tenant

SORT_COLUMNS = {"name": Tenant.name, "slug": Tenant.slug, "created_at": Tenant.created_at}


class TenantDeleted(Conflict):
    message = "The tenant is deleted; restore it first."


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


def tenant_by_slug(slug: str) -> Tenant:
    """The tenant an operator names by its slug (case-insensitive), deleted ones included; 404 when none."""
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == slug.strip().lower()))
    if tenant is None:
        raise NotFound(f"No tenant with slug {slug!r}.")
    return tenant


def list_scope(*, actor, action: str, tenant_id: uuid.UUID | None = None) -> Tenant | None:
    """The tenant a list (`action`, e.g. users:list) is limited to; None: every tenant.

    A named tenant must be visible (404) and listable (403). Without one, a
    platform-wide reader lists everything; anyone else its own tenant, if it may (403).
    """
    if tenant_id is not None:
        tenant = get_tenant(actor=actor, tenant_id=tenant_id)
        authorize(actor, action, tenant)
        return tenant
    if allowed(actor, action, PLATFORM):
        return None
    if actor.tenant is None:
        authorize(actor, action, PLATFORM)
    authorize(actor, action, actor.tenant)
    return actor.tenant


def _tenant_to_change(actor, tenant_id: uuid.UUID, action: str, if_match=None) -> Tenant:
    """The tenant an action targets: visible to the actor (404), the action allowed (403), If-Match current (412)."""
    tenant = get_tenant(actor=actor, tenant_id=tenant_id)
    authorize(actor, action, tenant)
    check_if_match(if_match, tenant)
    return tenant


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
    tenant = _tenant_to_change(actor, tenant_id, "tenants:update", if_match)
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


def delete_tenant(*, actor, tenant_id: uuid.UUID, if_match=None) -> None:
    """Soft delete: its users can no longer sign in, and every token issued to them so far is refused."""
    tenant = _tenant_to_change(actor, tenant_id, "tenants:delete", if_match)
    now = utcnow()
    _change_status(tenant, actor=actor, action="tenant.delete", expected="active", refusal="The tenant is already deleted.",
                   status="deleted", deleted_at=now, tokens_valid_after=now)


def restore_tenant(*, actor, tenant_id: uuid.UUID, if_match=None) -> Tenant:
    """Back to active. Users disabled on their own stay disabled; tokens from before the delete stay dead."""
    tenant = _tenant_to_change(actor, tenant_id, "tenants:restore", if_match)
    # tokens_valid_after moves again: a sign-in that raced the delete cannot come back to life either.
    _change_status(tenant, actor=actor, action="tenant.restore", expected="deleted", refusal="The tenant is not deleted.",
                   status="active", deleted_at=None, tokens_valid_after=utcnow())
    return tenant


def _change_status(tenant: Tenant, *, actor, action: str, expected: str, refusal: str, **values) -> None:
    """One guarded UPDATE from the expected status (the database decides races), its audit event, one commit."""
    before = snapshot(tenant)
    if not guarded_update(tenant, Tenant.status == expected, **values):
        db.session.rollback()
        raise Conflict(refusal)
    audit.record(action, actor=actor, tenant_id=tenant.id, target_type="tenant", target_id=tenant.id,
                 changes=audit.diff(before, snapshot(tenant)))
    db.session.commit()


def require_active_tenant(tenant: Tenant | None, *, refusal: type[AppError] = TenantDeleted) -> None:
    """Refuse a change inside a deleted tenant: 409 by default (invitation accept passes its 410). None: the platform.

    The status is read again under a share lock (PostgreSQL): a concurrent delete
    either committed first and is seen here, or waits until this transaction ends.
    Call it in the transaction of the change, before writing.
    """
    if tenant is None:
        return
    status = db.session.scalar(select(Tenant.status).where(Tenant.id == tenant.id).with_for_update(read=True))
    if status != "active":
        raise refusal()
