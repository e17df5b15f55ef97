"""The live policies of a tenant user: built-in + platform-wide + its tenant's enabled policies, parsed once.

Every policy change gives its scope (a tenant, or the platform) a new revision
in the same transaction (admin_api/policies). Each request reads its user's two
revisions in the query that loads the user (core/security.py: no extra round
trip); a parsed bundle is reused while both revisions are those it was built
from, and rebuilt by the first request that sees a newer one: in every worker,
on every server, from the very next request. Policies are never parsed per request.

Platform admins have no tenant: they are decided by the built-in policies alone.
"""
from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import or_, select

from admin_api.extensions import db
from admin_api.policy.evaluator import BUILTIN, Bundle, Registered

MAX_BUNDLES = 1024  # tenants whose parsed policies a process keeps (least recently used go first)
# ...and parsed text of at most this `Bundle.cost` among them (at about 44 bytes each: some 220 MB), whatever
# tenants register; a bundle evicted is parsed again when next needed.
MAX_CACHED_COST = 5_000_000


@dataclass(frozen=True)
class Revisions:
    """The revisions of a tenant's policies and of the platform-wide ones (None: never had any)."""

    tenant: uuid.UUID | None = None
    platform: uuid.UUID | None = None


_bundles: OrderedDict[uuid.UUID | None, tuple[Revisions, Bundle]] = OrderedDict()
_lock = threading.Lock()


def bundle_for(tenant_id: uuid.UUID | None, revisions: Revisions | None = None, *, keep: bool = True) -> Bundle:
    """The live bundle of a tenant's users (BUILTIN without a tenant); `keep=False` leaves the cache as it is."""
    if tenant_id is None:
        return BUILTIN
    revisions = revisions or current_revisions(tenant_id)
    if revisions.tenant is None and revisions.platform is None:
        return BUILTIN
    # Tenants without policies of their own share one bundle: the platform-wide policies.
    key = tenant_id if revisions.tenant is not None else None
    with _lock:
        cached = _bundles.get(key)
        if cached is not None and cached[0] == revisions:
            _bundles.move_to_end(key)
            return cached[1]
    bundle = Bundle(_enabled_policies(key))
    if keep:
        with _lock:
            _bundles[key] = (revisions, bundle)
            _bundles.move_to_end(key)
            while len(_bundles) > 1 and (len(_bundles) > MAX_BUNDLES or _cached_cost() > MAX_CACHED_COST):
                _bundles.popitem(last=False)
    return bundle


def _cached_cost() -> int:
    return sum(bundle.cost for _, bundle in _bundles.values())


def revisions_of(user) -> Revisions:
    """The revisions read with the signed-in user (core.security), else read now (CLI, services called directly)."""
    return getattr(user, "policy_revisions", None) or current_revisions(user.tenant_id)


def current_revisions(tenant_id: uuid.UUID | None) -> Revisions:
    from admin_api.policies.models import PLATFORM_SCOPE, PolicySetVersion

    rows = dict(db.session.execute(select(PolicySetVersion.scope_id, PolicySetVersion.revision)
                                   .where(PolicySetVersion.scope_id.in_([PLATFORM_SCOPE, tenant_id or PLATFORM_SCOPE]))).all())
    return Revisions(rows.get(tenant_id) if tenant_id else None, rows.get(PLATFORM_SCOPE))


def _enabled_policies(tenant_id: uuid.UUID | None) -> list[Registered]:
    """The enabled platform-wide policies, and the tenant's own (oldest first)."""
    from admin_api.policies.models import Policy

    scope = Policy.tenant_id.is_(None) if tenant_id is None else or_(Policy.tenant_id.is_(None),
                                                                      Policy.tenant_id == tenant_id)
    rows = db.session.execute(select(Policy.id, Policy.name, Policy.source).where(Policy.enabled, scope)
                              .order_by(Policy.created_at, Policy.id))
    return [Registered(str(row.id), row.name, row.source) for row in rows]
