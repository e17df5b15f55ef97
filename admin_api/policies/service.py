"""Policy rules: who registers which Cedar policies, their validation, the live sets' versions, the dry-run.

A tenant admin manages its own tenant's policies; platform admins manage all,
and alone register platform-wide ones (no tenant: they apply to the users of
every tenant, never to platform admins). Every change moves the version of its
scope's live set in the same transaction, so every worker uses it from the next
request on. What a registered policy can and cannot do is core/authz.py's guard rails.
"""
from __future__ import annotations

import re
import uuid
from collections import defaultdict

from sqlalchemy import func, select

from admin_api.core import audit
from admin_api.core.api import check_if_match
from admin_api.core.authz import (
    GUARD,
    PLATFORM,
    TENANT_ACTIONS,
    Bundle,
    allowed,
    answer,
    authorize,
    live_bundle,
    model_named,
    question,
    require_visible,
    tenant_of,
)
from admin_api.core.db import dialect_insert, utcnow
from admin_api.core.errors import Conflict, Invalid, NotFound
from admin_api.core.pagination import ResultPage, paginate
from admin_api.extensions import db
from admin_api.policies.models import PLATFORM_SCOPE, Policy, PolicySetVersion, name_key
from admin_api.policy import Registered
from admin_api.policy.catalog import ACTIONS, ENTITY_TYPES, SCHEMA_TEXT
from admin_api.policy.evaluator import BUILTIN_IDS, Candidate
from admin_api.policy.live import bundle_for
from admin_api.policy.source import Problem, problems
from admin_api.tenants import service as tenants
from admin_api.tenants.models import Tenant

SORT_COLUMNS = {"name": Policy.name, "created_at": Policy.created_at, "updated_at": Policy.updated_at}
DRAFT = "draft"  # the Cedar id of a dry-run's candidate policy
# What one scope (a tenant, or the platform) may hold: every worker parses all of it, so it is bounded.
MAX_POLICIES_PER_SCOPE = 500
MAX_SCOPE_SOURCE_LENGTH = 128_000  # characters of Cedar text, disabled policies included


def snapshot(policy: Policy) -> dict:
    return {"name": policy.name, "description": policy.description, "source": policy.source,
            "enabled": policy.enabled}


def _refuse_invalid(source: str) -> None:
    """422 with every problem Cedar finds (and where), before anything is stored."""
    if found := problems(source):
        raise Invalid("The policy is not valid Cedar for this platform: see errors.",
                      errors={"source": [str(problem) for problem in found]},
                      extra={"problems": [problem.as_dict() for problem in found]})


def _scope(actor, tenant_id: uuid.UUID | None) -> Tenant | None:
    """The tenant a policy (or draft) is for: the one named, else the actor's own; None: platform-wide."""
    tenant_id = tenant_id or actor.tenant_id
    return tenants.get_tenant(actor=actor, tenant_id=tenant_id) if tenant_id else None


def _move_version(tenant_id: uuid.UUID | None) -> None:
    """A new version of the scope's live set, in the caller's transaction (the database orders concurrent ones)."""
    now = utcnow()
    insert = dialect_insert(PolicySetVersion, db.session).values(
        scope_id=tenant_id or PLATFORM_SCOPE, version=1, revision=uuid.uuid4(), created_at=now, updated_at=now)
    db.session.execute(insert.on_conflict_do_update(
        index_elements=[PolicySetVersion.scope_id],
        set_={"version": PolicySetVersion.version + 1, "revision": insert.excluded.revision, "updated_at": now}))


def _refuse_over_limits(tenant_id: uuid.UUID | None) -> None:
    """409 when the scope would hold too many policies or too much text. Called after `_move_version`, whose
    row lock makes concurrent changes of the scope count one after the other."""
    in_scope = Policy.tenant_id == tenant_id if tenant_id else Policy.tenant_id.is_(None)
    count, length = db.session.execute(
        select(func.count(), func.coalesce(func.sum(func.length(Policy.source)), 0)).where(in_scope)).one()
    if count > MAX_POLICIES_PER_SCOPE:
        raise Conflict(f"A tenant (or the platform) holds at most {MAX_POLICIES_PER_SCOPE} policies: "
                       "delete or merge some first.")
    if length > MAX_SCOPE_SOURCE_LENGTH:
        raise Conflict(f"The policies of a tenant (or of the platform) hold at most {MAX_SCOPE_SOURCE_LENGTH:,} "
                       f"characters of Cedar text together; this change would make {length:,}.",
                       errors={"source": ["Too much Cedar text in this scope."]})


def _refuse_taken_name(tenant_id: uuid.UUID | None, name: str) -> None:
    if db.session.scalar(select(Policy.id).where(Policy.name_key == name_key(tenant_id, name))) is not None:
        raise Conflict("A policy with this name exists in this scope.", errors={"name": ["Already taken."]})


def _record(action: str, *, actor, policy: Policy, changes: dict) -> None:
    audit.record(action, actor=actor, tenant_id=policy.tenant_id, target_type="policy", target_id=policy.id,
                 changes=changes)


# --- register, read, change, remove ---------------------------------------------------------

def list_policies(*, actor, args: dict) -> ResultPage:
    scope = tenants.list_scope(actor=actor, action="policies:list", tenant_id=args.get("tenant_id"))
    stmt = select(Policy) if scope is None else select(Policy).where(Policy.tenant_id == scope.id)
    if "enabled" in args:
        stmt = stmt.where(Policy.enabled == args["enabled"])
    return paginate(stmt, args=args, sort_columns=SORT_COLUMNS, id_column=Policy.id)


def get_policy(*, actor, policy_id: uuid.UUID) -> Policy:
    policy = db.session.get(Policy, policy_id)
    if policy is None:
        raise NotFound("Policy not found.")
    require_visible(actor, "policies:read", policy, what="Policy")
    return policy


def _policy_to_change(actor, policy_id: uuid.UUID, action: str, if_match) -> Policy:
    """The policy an action targets: visible (404), the action allowed (403), If-Match current (412)."""
    policy = get_policy(actor=actor, policy_id=policy_id)
    authorize(actor, action, policy)
    check_if_match(if_match, policy)
    return policy


def create_policy(*, actor, name: str, source: str, description: str = "", enabled: bool = True,
                  tenant_id: uuid.UUID | None = None) -> Policy:
    tenant = _scope(actor, tenant_id)
    authorize(actor, "policies:create", tenant or PLATFORM)
    tenants.require_active_tenant(tenant)
    _refuse_invalid(source)
    scope_id = tenant.id if tenant else None
    _refuse_taken_name(scope_id, name)
    policy = Policy(tenant_id=scope_id, name=name, name_key=name_key(scope_id, name), description=description,
                    source=source, enabled=enabled)
    db.session.add(policy)
    db.session.flush()
    _move_version(scope_id)
    _refuse_over_limits(scope_id)
    _record("policy.create", actor=actor, policy=policy, changes={"after": snapshot(policy)})
    db.session.commit()
    return policy


def update_policy(*, actor, policy_id: uuid.UUID, changes: dict, if_match=None) -> Policy:
    """New text, name, description or enabled flag: a new `version`, the same validation as at registration."""
    policy = _policy_to_change(actor, policy_id, "policies:update", if_match)
    tenants.require_active_tenant(policy.tenant)
    if "source" in changes:
        _refuse_invalid(changes["source"])
    if "name" in changes and name_key(policy.tenant_id, changes["name"]) != policy.name_key:
        _refuse_taken_name(policy.tenant_id, changes["name"])
        policy.name_key = name_key(policy.tenant_id, changes["name"])
    before = snapshot(policy)
    for field, value in changes.items():
        setattr(policy, field, value)
    after = snapshot(policy)
    if after != before:
        db.session.flush()  # the row's version moves (and a concurrent change of it is refused)
        _move_version(policy.tenant_id)
        if "source" in changes:
            _refuse_over_limits(policy.tenant_id)
        _record("policy.update", actor=actor, policy=policy, changes=audit.diff(before, after))
    db.session.commit()
    return policy


def delete_policy(*, actor, policy_id: uuid.UUID, if_match=None) -> None:
    """Removed for good: its audit events keep its text (there is nothing to restore)."""
    policy = _policy_to_change(actor, policy_id, "policies:delete", if_match)
    before = snapshot(policy)
    db.session.delete(policy)
    db.session.flush()  # DELETE ... WHERE version = read version: a concurrent change wins, this one is refused
    _move_version(policy.tenant_id)
    _record("policy.delete", actor=actor, policy=policy, changes={"before": before})
    db.session.commit()


# --- the schema ---------------------------------------------------------------------------------

def cedar_schema(*, actor) -> dict:
    """The platform's Cedar schema: its text, its entity types, its actions (and which ones policies may grant)."""
    authorize(actor, "policies:list", actor.tenant or PLATFORM)
    return {
        "cedar": SCHEMA_TEXT,
        "entity_types": list(ENTITY_TYPES.values()),
        "actions": [{**vars(action), "tenant_policies_may_permit": action.name in TENANT_ACTIONS}
                    for action in ACTIONS.values()],
    }


# --- dry-run ------------------------------------------------------------------------------------

def dry_run(*, actor, source: str, requests: list[dict], tenant_id: uuid.UUID | None = None) -> dict:
    """Each request decided with the draft added to the live policies, and without it. Saves and audits nothing.

    The draft applies where it would once registered: to the users of its tenant (a platform-wide draft: of every
    tenant), never to platform admins. Both decisions come from core.authz.answer(), as in enforcement, but with
    throw-away policy sets kept out of every cache.
    """
    tenant = _scope(actor, tenant_id)
    authorize(actor, "policies:dry_run", tenant or PLATFORM)
    if found := problems(source):
        return {"valid": False, "errors": [problem.as_dict() for problem in found], "results": []}
    # A tenant's dry-run names the entities of that tenant only (others answer "not found", as everywhere).
    visible_tenant = tenant.id if tenant and not allowed(actor, "policies:dry_run", PLATFORM) else None
    trial = _Trial(draft=Registered(DRAFT, DRAFT, source), scope=tenant.id if tenant else None,
                   visible_tenant=visible_tenant)
    trial.preload(requests)
    return {"valid": True, "errors": [], "results": [trial.run(request) for request in requests]}


class _Trial:
    """One dry-run: the draft, where it applies, and the policy sets built for it (per principal tenant)."""

    def __init__(self, *, draft: Registered, scope: uuid.UUID | None, visible_tenant: uuid.UUID | None):
        self.draft = draft
        self.scope = scope
        self.visible_tenant = visible_tenant
        self._bundles: dict[uuid.UUID | None, tuple[Bundle, Bundle | Candidate]] = {}
        self._loaded: list = []

    def preload(self, requests: list[dict]) -> None:
        """Every named entity (and its tenant) in one query per type, so that evaluating them reads nothing more."""
        wanted: dict[type, set[uuid.UUID]] = defaultdict(set)
        for request in requests:
            for ref in (request["principal"], request["resource"]):
                if (model := model_named(ref["type"])) is not None and (entity_id := _uuid(ref["id"])):
                    wanted[model].add(entity_id)
        loaded = [obj for model, ids in wanted.items() for obj in db.session.scalars(select(model).where(model.id.in_(ids)))]
        tenant_ids = {tenant_of(obj) for obj in loaded} - {None}
        # Held for the trial: the session's identity map only keeps weak references.
        self._loaded = [*loaded, *db.session.scalars(select(Tenant).where(Tenant.id.in_(tenant_ids)))]

    def run(self, request: dict) -> dict:
        action = ACTIONS.get(request["action"])
        if action is None:
            return _unanswered(f"Unknown action {request['action']!r}: see GET /api/v1/policies/schema.")
        principal, principal_problem = self._entity(request["principal"], action.principal_types, "principal", action.name)
        resource, resource_problem = self._entity(request["resource"], action.resource_types, "resource", action.name)
        if principal_problem or resource_problem:
            return _unanswered(*filter(None, (principal_problem, resource_problem)))
        live, candidate = self._bundles_of(principal)
        asked = question(principal, action.name, resource, request["context"])
        without = answer(asked, live, memoize=False)  # throw-away questions: kept out of the memo
        # Where no statement of the draft can apply to the action, its decision is the live one (Cedar skips a
        # policy whose scope does not match: it neither matches nor fails).
        decision = answer(asked, candidate) if candidate is not live and candidate.adds_to(action.name) else without
        return {
            "decision": _verdict(decision), "decision_without_candidate": _verdict(without),
            "changed": decision.allowed != without.allowed,
            "determining_policies": _unique(_policy_ref(cedar_id, candidate) for cedar_id in decision.determining_policies),
            "errors": [{"message": error, "policy": _erring_policy(error, candidate)} for error in decision.errors],
        }

    def _entity(self, ref: dict, types: tuple[str, ...], role: str, action: str):
        """(The entity a request names, None) or (None, why it cannot be used)."""
        type_name, entity_id = ref["type"], ref["id"]
        if type_name not in ENTITY_TYPES:
            return None, f"Unknown entity type {type_name!r}: see GET /api/v1/policies/schema."
        if type_name not in types:
            return None, f"{action} takes a {role} of type {' or '.join(types)}, not {type_name}."
        if type_name == "Platform":
            return (PLATFORM, None) if entity_id == PLATFORM.id else (None, f"Platform {entity_id!r} not found.")
        obj = db.session.get(model_named(type_name), key) if (key := _uuid(entity_id)) else None
        if obj is None or (self.visible_tenant is not None and tenant_of(obj) != self.visible_tenant):
            return None, f"{type_name} {entity_id!r} not found."
        return obj, None

    def _bundles_of(self, principal) -> tuple[Bundle, Bundle | Candidate]:
        """The principal's live policies, and the same with the draft where the draft applies to it."""
        key = principal.tenant_id
        if key not in self._bundles:
            live = live_bundle(principal, keep=False)
            applies = key is not None and self.scope in (None, key)
            self._bundles[key] = (live, live.with_draft(self.draft) if applies else live)
        return self._bundles[key]


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _verdict(decision) -> str:
    return "allow" if decision.allowed else "deny"


def _unanswered(*messages: str) -> dict:
    return {"decision": None, "decision_without_candidate": None, "changed": False, "determining_policies": [],
            "errors": [{"message": message, "policy": None} for message in messages]}


def _policy_ref(cedar_id: str, bundle: Bundle | Candidate) -> dict:
    """A determining (or failing) policy as the console shows it."""
    if cedar_id == GUARD:
        return {"id": GUARD, "name": "Guard rail: registered policies cannot grant this (another tenant's "
                                     "resource, or a platform action)", "kind": "guard", "draft": False}
    if cedar_id in BUILTIN_IDS:
        return {"id": cedar_id, "name": cedar_id, "kind": "builtin", "draft": False}
    policy_id = bundle.policy_of(cedar_id)
    if policy_id == DRAFT:
        return {"id": DRAFT, "name": DRAFT, "kind": "draft", "draft": True}
    return {"id": policy_id, "name": bundle.names.get(policy_id), "kind": "registered", "draft": False}


_FAILING_POLICY = re.compile(r"while evaluating policy `([^`]+)`")


def _erring_policy(error: str, bundle: Bundle | Candidate) -> dict | None:
    match = _FAILING_POLICY.search(error)
    return _policy_ref(match.group(1), bundle) if match else None


def _unique(refs) -> list[dict]:
    """Each policy once (a policy of several statements may determine a decision several times)."""
    seen, unique = set(), []
    for ref in refs:
        if ref["id"] not in seen:
            seen.add(ref["id"])
            unique.append(ref)
    return unique


# --- operator command ---------------------------------------------------------------------------

def check_file(*, source: str, tenant_slug: str | None = None) -> tuple[list[Problem], str]:
    """The problems of a Cedar file (the API's messages), and what it would join once registered."""
    found = problems(source)
    if tenant_slug is None:
        return found, "platform-wide: would apply to the users of every tenant"
    tenant = db.session.scalar(select(Tenant).where(Tenant.slug == tenant_slug))
    if tenant is None:
        raise NotFound(f"No tenant with the slug {tenant_slug!r}.")
    live = bundle_for(tenant.id, keep=False)
    return found, f"for tenant {tenant.slug}: would join its {len(live.registered)} live policies"
