"""The policy enforcement point: every "may the actor do this?" is asked here, and Cedar answers.

Views and services never compare roles themselves; they name an action and a
resource. `require_visible` turns a denied read into 404, so another tenant's
records look exactly like missing ones.

Registered policies (admin_api/policies) join the built-in role policies for
tenant users, inside guard rails that no policy text can break:

* Platform admins (no tenant) are decided by the built-in policies alone: no
  registered policy, tenant or platform-wide, can lock them out.
* A registered policy may always forbid. It may permit only a TENANT_ACTIONS
  action, on a resource of the principal's own tenant: a permit on another
  tenant's user, or of a platform action, changes nothing.
* A policy that fails to evaluate denies the request (fail closed), and
  `allowed()` records an `authz.error` audit event that outlives the refusal.

Enforcement (`allowed`) and the dry-run of a draft both decide with `answer()`.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from admin_api.core.errors import Forbidden, NotFound
from admin_api.policy import Bundle, Decision, evaluate
from admin_api.policy.evaluator import Candidate, Entities
from admin_api.policy.live import bundle_for, revisions_of

# --- Where a new area plugs in ------------------------------------------------------------------------------------
# 1. Every action of policy/schema.cedarschema is in exactly one of these two sets (a test checks it).
#    TENANT_ACTIONS: registered policies may permit them to tenant users, on resources of the user's own tenant.
#    PLATFORM_ACTIONS: only the built-in role policies (policy/roles.cedar) can permit them.
TENANT_ACTIONS = frozenset({
    "tenants:read",
    "users:list", "users:create", "users:read", "users:update", "users:delete", "users:restore",
    "users:reset_password", "users:change_password",
    "profiles:read", "profiles:update",
    "audit:list", "audit:read",
    "invitations:list", "invitations:create", "invitations:read", "invitations:revoke", "invitations:resend",
    "flags:list", "flags:read", "flags:evaluate", "flags:set_override", "flags:clear_override",
    "policies:list", "policies:create", "policies:read", "policies:update", "policies:delete", "policies:dry_run",
})
PLATFORM_ACTIONS = frozenset({
    "tenants:list", "tenants:create", "tenants:update", "tenants:delete", "tenants:restore",
    "flags:create", "flags:update", "flags:delete",
})
# 2. Every model passed to authorize() as a resource is described in entity_kinds() below.

# The pseudo policy named as determining when the guard rails turned a registered permit down.
GUARD = "guard.tenant_scope"


class _Platform:
    """The resource of platform-wide actions (create a tenant, list every user)."""

    id = "platform"


PLATFORM = _Platform()


def _tenant_attr(obj) -> dict:
    return {"tenant": {"__entity": _ref("Tenant", obj.tenant_id)}} if obj.tenant_id else {}


@dataclass(frozen=True)
class EntityKind:
    """How a model object is described to Cedar. Its Cedar type is the model's class name (schema.cedarschema)."""

    attrs: Callable[[Any], dict] = _tenant_attr
    parents: Callable[[Any], list[dict]] = field(default=lambda obj: [])
    tenant: Callable[[Any], uuid.UUID | None] = field(default=lambda obj: obj.tenant_id)  # None: the platform's


@cache
def entity_kinds() -> dict[type, EntityKind]:
    """Model class -> its Cedar description. A new area adds its resource models here."""
    from admin_api.audit.models import AuditEvent
    from admin_api.invitations.models import Invitation
    from admin_api.policies.models import Policy
    from admin_api.tenants.models import Tenant
    from admin_api.users.models import User

    return {
        Tenant: EntityKind(attrs=lambda tenant: {"status": tenant.status}, tenant=lambda tenant: tenant.id),
        User: EntityKind(attrs=lambda user: {"role": user.role, "status": user.status, **_tenant_attr(user)},
                         parents=lambda user: [_ref("Role", user.role)]),
        AuditEvent: EntityKind(),
        Invitation: EntityKind(attrs=lambda invitation: {"role": invitation.role, **_tenant_attr(invitation)}),
        Policy: EntityKind(),
    }


def model_named(type_name: str) -> type | None:
    """The model class behind a Cedar entity type (None for Platform and for types no model has)."""
    return next((model for model in entity_kinds() if model.__name__ == type_name), None)


def tenant_of(obj) -> uuid.UUID | None:
    """The tenant a resource belongs to (None: the platform's)."""
    return None if obj is PLATFORM else entity_kinds()[obj.__class__].tenant(obj)


def _ref(type_name: str, id_) -> dict:
    return {"type": type_name, "id": str(id_)}


def _entity(obj) -> tuple[dict, list[dict]]:
    """Cedar reference of a model object, and the entities that describe it (its tenant's included)."""
    if obj is PLATFORM:
        ref = _ref("Platform", "platform")
        return ref, [{"uid": ref, "attrs": {}, "parents": []}]
    kind = entity_kinds().get(obj.__class__)
    if kind is None:
        raise TypeError(f"no Cedar entity for {obj.__class__.__name__}: add it to core.authz.entity_kinds()")
    ref = _ref(obj.__class__.__name__, obj.id)
    entities = [{"uid": ref, "attrs": kind.attrs(obj), "parents": kind.parents(obj)}]
    tenant_id = kind.tenant(obj)
    if tenant_id is not None and tenant_id != obj.id:
        entities.append(_tenant_entity(tenant_id))
    return ref, entities


def _tenant_entity(tenant_id) -> dict:
    """The tenant as Cedar sees it, with its real status (usually in the session already: no query)."""
    from admin_api.extensions import db

    tenant = db.session.get(model_named("Tenant"), tenant_id)
    return {"uid": _ref("Tenant", tenant_id), "attrs": {"status": tenant.status if tenant else "deleted"}, "parents": []}


def _merge(*groups: list[dict]) -> list[dict]:
    """Entities by uid; the first description of a uid wins."""
    merged: dict[tuple, dict] = {}
    for group in groups:
        for entity in group:
            merged.setdefault((entity["uid"]["type"], entity["uid"]["id"]), entity)
    return list(merged.values())


def live_bundle(actor, *, keep: bool = True) -> Bundle:
    """The policies deciding for the actor: built-in, plus the registered ones when it belongs to a tenant."""
    return bundle_for(actor.tenant_id, revisions_of(actor) if actor.tenant_id else None, keep=keep)


def _may_widen(actor, action: str, resource) -> bool:
    """Whether a registered permit may grant this: a tenant action, on a resource of the actor's own tenant."""
    return action in TENANT_ACTIONS and actor.tenant_id is not None and tenant_of(resource) == actor.tenant_id


@dataclass(frozen=True)
class Question:
    """"May `actor` do `action` on `resource`?", described to Cedar once (the dry-run asks it twice)."""

    actor: Any
    action: str
    resource: Any
    context: dict | None
    principal: dict
    target: dict
    entities: Entities


def question(actor, action: str, resource, context: dict | None = None) -> Question:
    principal, principal_entities = _entity(actor)
    target, resource_entities = _entity(resource)
    return Question(actor, action, resource, context, principal, target,
                    Entities(_merge(principal_entities, resource_entities)))


def answer(asked: Question, bundle: Bundle | Candidate, *, memoize: bool = True) -> Decision:
    """Cedar's decision over `bundle`, within the guard rails: enforcement and dry-run alike."""
    decision = evaluate(principal=asked.principal, action=asked.action, resource=asked.target, entities=asked.entities,
                        context=asked.context, policies=bundle.for_action(asked.action),
                        memo_key=bundle.memo_key(asked.action) if memoize and bundle.memoize else None)
    if decision.allowed and not decision.builtin and not _may_widen(asked.actor, asked.action, asked.resource):
        return Decision(False, (GUARD,), decision.errors)
    return decision


def decide(actor, action: str, resource, context: dict | None = None) -> Decision:
    """The decision over the actor's live policies."""
    return answer(question(actor, action, resource, context), live_bundle(actor))


def allowed(actor, action: str, resource, context: dict | None = None) -> bool:
    """Ask Cedar whether the actor may do `action` on `resource`; a policy error denies and is audited."""
    decision = decide(actor, action, resource, context)
    if decision.errors:
        from admin_api.core import audit  # (core.audit imports the audit area, whose service imports this module)

        audit.record_apart("authz.error", actor=actor, tenant_id=actor.tenant_id, target_type=_target_type(resource),
                           target_id=resource.id, changes={"action": action, "errors": list(decision.errors)})
    return decision.allowed


def _target_type(resource) -> str:
    """The audit target type of a resource: its Cedar type in snake case (`AuditEvent` -> `audit_event`)."""
    name = "Platform" if resource is PLATFORM else resource.__class__.__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def authorize(actor, action: str, resource, context: dict | None = None) -> None:
    """403 unless allowed."""
    if not allowed(actor, action, resource, context):
        raise Forbidden()


def require_visible(actor, action: str, resource, *, what: str = "Resource") -> None:
    """404 unless allowed: what the actor may not read, it may not know exists either."""
    if not allowed(actor, action, resource):
        raise NotFound(f"{what} not found.")
