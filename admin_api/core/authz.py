"""The policy enforcement point: every "may the actor do this?" is asked here, and Cedar answers.

Views and services never compare roles themselves; they name an action and a
resource. `require_visible` turns a denied read into 404, so another tenant's
records look exactly like missing ones.
"""
from __future__ import annotations

from admin_api.core.errors import Forbidden, NotFound
from admin_api.policy import evaluate


class _Platform:
    """The resource of platform-wide actions (create a tenant, list every user)."""

    id = "platform"


PLATFORM = _Platform()


def _ref(type_name: str, id_) -> dict:
    return {"type": type_name, "id": str(id_)}


def _entity(obj) -> tuple[dict, list[dict]]:
    """Cedar reference of a model object, and the entities that describe it."""
    from admin_api.audit.models import AuditEvent
    from admin_api.invitations.models import Invitation
    from admin_api.tenants.models import Tenant
    from admin_api.users.models import User

    if obj is PLATFORM:
        ref = _ref("Platform", "platform")
        return ref, [{"uid": ref, "attrs": {}, "parents": []}]
    if isinstance(obj, Tenant):
        ref = _ref("Tenant", obj.id)
        return ref, [{"uid": ref, "attrs": {"status": obj.status}, "parents": []}]
    if isinstance(obj, User):
        ref = _ref("User", obj.id)
        attrs = {"role": obj.role, "status": obj.status}
        if obj.tenant_id:
            attrs["tenant"] = {"__entity": _ref("Tenant", obj.tenant_id)}
        return ref, [{"uid": ref, "attrs": attrs, "parents": []}, *_tenant_stub(obj.tenant_id)]
    if isinstance(obj, Invitation):
        ref = _ref("Invitation", obj.id)
        attrs = {"tenant": {"__entity": _ref("Tenant", obj.tenant_id)}, "role": obj.role}
        return ref, [{"uid": ref, "attrs": attrs, "parents": []}, *_tenant_stub(obj.tenant_id)]
    if isinstance(obj, AuditEvent):
        ref = _ref("AuditEvent", obj.id)
        attrs = {"tenant": {"__entity": _ref("Tenant", obj.tenant_id)}} if obj.tenant_id else {}
        return ref, [{"uid": ref, "attrs": attrs, "parents": []}, *_tenant_stub(obj.tenant_id)]
    raise TypeError(f"no Cedar entity for {type(obj).__name__}")


def _tenant_stub(tenant_id) -> list[dict]:
    return [{"uid": _ref("Tenant", tenant_id), "attrs": {"status": "active"}, "parents": []}] if tenant_id else []


def _merge(*groups: list[dict]) -> list[dict]:
    """Entities by uid; the first description of a uid wins (pass full ones first)."""
    merged: dict[tuple, dict] = {}
    for group in groups:
        for entity in group:
            merged.setdefault((entity["uid"]["type"], entity["uid"]["id"]), entity)
    return list(merged.values())


def allowed(actor, action: str, resource, context: dict | None = None) -> bool:
    """Ask Cedar whether the actor may do `action` on `resource`."""
    principal, principal_entities = _entity(actor)
    target, resource_entities = _entity(resource)
    decision = evaluate(
        principal=principal,
        action=action,
        resource=target,
        entities=_merge(resource_entities, principal_entities),
        context=context,
    )
    return decision.allowed


def authorize(actor, action: str, resource, context: dict | None = None) -> None:
    """403 unless allowed."""
    if not allowed(actor, action, resource, context):
        raise Forbidden()


def require_visible(actor, action: str, resource, *, what: str = "Resource") -> None:
    """404 unless allowed: what the actor may not read, it may not know exists either."""
    if not allowed(actor, action, resource):
        raise NotFound(f"{what} not found.")
