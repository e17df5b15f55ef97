"""Feature flag rules: who sees which overrides, create, change, delete, per-tenant overrides, evaluation.

Flags are platform-wide: every signed-in user reads them, platform admins manage them. An override
belongs to one tenant: its tenant admin sets and clears it, and only platform admins see other
tenants' entries. Every change bumps the flag's `version` (its ETag), override changes included.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, or_, select, update

from admin_api.core import audit
from admin_api.core.api import check_if_match
from admin_api.core.authz import PLATFORM, allowed, authorize, require_visible
from admin_api.core.db import utcnow
from admin_api.core.errors import Conflict, Invalid, NotFound
from admin_api.core.pagination import ResultPage, paginate
from admin_api.extensions import db
from admin_api.feature_flags.evaluation import Evaluation, evaluate_flag
from admin_api.feature_flags.models import KEY_PATTERN, FeatureFlag, FeatureFlagOverride, as_percentage
from admin_api.tenants import service as tenants
from admin_api.tenants.service import contains
from admin_api.users import service as users

SORT_COLUMNS = {"key": FeatureFlag.key, "created_at": FeatureFlag.created_at, "updated_at": FeatureFlag.updated_at}
KEY = re.compile(KEY_PATTERN)
Overrides = dict[uuid.UUID, bool]  # tenant id -> forced value


@dataclass(frozen=True)
class FlagView:
    """A flag as one reader sees it: `tenant_overrides` holds only the entries that reader may see."""

    id: uuid.UUID
    key: str
    description: str
    enabled: bool
    rollout_basis_points: int | None
    tenant_overrides: Overrides
    created_at: datetime
    updated_at: datetime
    version: int


# --- reading ----------------------------------------------------------------------------------

def _reader_scope(actor, action: str) -> uuid.UUID | None:
    """Whose overrides the actor reads: None for every tenant's (allowed on the Platform), else its own tenant's."""
    if allowed(actor, action, PLATFORM):
        return None
    authorize(actor, action, actor.tenant or PLATFORM)
    return actor.tenant_id


def _overrides(flag_ids: list[uuid.UUID], tenant_id: uuid.UUID | None) -> dict[uuid.UUID, Overrides]:
    """Flag id -> its overrides: every tenant's, or only `tenant_id`'s when given."""
    stmt = select(FeatureFlagOverride.flag_id, FeatureFlagOverride.tenant_id, FeatureFlagOverride.enabled).where(
        FeatureFlagOverride.flag_id.in_(flag_ids))
    if tenant_id is not None:
        stmt = stmt.where(FeatureFlagOverride.tenant_id == tenant_id)
    found: dict[uuid.UUID, Overrides] = {flag_id: {} for flag_id in flag_ids}
    for flag_id, override_tenant, enabled in db.session.execute(stmt) if flag_ids else ():
        found[flag_id][override_tenant] = enabled
    return found


def _views(flags: list[FeatureFlag], scope: uuid.UUID | None) -> list[FlagView]:
    overrides = _overrides([flag.id for flag in flags], scope)
    return [FlagView(id=flag.id, key=flag.key, description=flag.description, enabled=flag.enabled,
                     rollout_basis_points=flag.rollout_basis_points, tenant_overrides=overrides[flag.id],
                     created_at=flag.created_at, updated_at=flag.updated_at, version=flag.version) for flag in flags]


def _find_flag(key: str, *, for_update: bool = False) -> FeatureFlag:
    """The flag, or 404. `for_update` locks its row until commit.

    Every write locks the flag row first, before any override row: on PostgreSQL concurrent writes to
    one flag then run one after the other (the second reads what the first wrote), never deadlock, and
    an If-Match is compared with the version that will be changed. SQLite has no row locks: there the
    write that lost the race fails the version check and answers 409 (retry), never a lost update.
    """
    if not KEY.fullmatch(key):  # a key that cannot exist is not sent to the database (NUL, 10 KB of path...)
        raise NotFound("Feature flag not found.")
    stmt = select(FeatureFlag).where(FeatureFlag.key == key)
    flag = db.session.scalar(stmt.with_for_update() if for_update else stmt)
    if flag is None:
        raise NotFound("Feature flag not found.")
    return flag


def list_flags(*, actor, args: dict) -> ResultPage:
    scope = _reader_scope(actor, "flags:list")
    stmt = select(FeatureFlag)
    if "enabled" in args:
        stmt = stmt.where(FeatureFlag.enabled == args["enabled"])
    if "q" in args:
        stmt = stmt.where(or_(contains(FeatureFlag.key, args["q"]), contains(FeatureFlag.description, args["q"])))
    page = paginate(stmt, args=args, sort_columns=SORT_COLUMNS, id_column=FeatureFlag.id)
    page.items = _views(page.items, scope)
    return page


def get_flag(*, actor, key: str) -> FlagView:
    scope = _reader_scope(actor, "flags:read")
    return _views([_find_flag(key)], scope)[0]


# --- managing (platform admins) ---------------------------------------------------------------

def snapshot(flag: FeatureFlag, overrides: Overrides) -> dict:
    return {"key": flag.key, "description": flag.description, "enabled": flag.enabled,
            "rollout_percentage": as_percentage(flag.rollout_basis_points),
            "tenant_overrides": {str(tenant_id): overrides[tenant_id] for tenant_id in sorted(overrides)}}


def _refuse_bad_tenants(wanted: Overrides, current: Overrides) -> None:
    """422 naming each unknown tenant, and each deleted one whose entry would change (kept as it is: fine)."""
    found = tenants.tenants_by_id(wanted)
    problems = {}
    for tenant_id, value in wanted.items():
        tenant = found.get(tenant_id)
        if tenant is None:
            problems[str(tenant_id)] = ["No such tenant."]
        elif tenant.is_deleted and current.get(tenant_id) != value:
            problems[str(tenant_id)] = ["The tenant is deleted."]
    if problems:
        raise Invalid(errors={"tenant_overrides": problems})


def _replace_overrides(flag: FeatureFlag, current: Overrides, wanted: Overrides) -> bool:
    """Make the stored entries `current` holds into `wanted`; whether anything changed. The flag's version follows.

    The pair (flag, tenant) is the primary key: two requests adding the same entry at once cannot both succeed.
    """
    gone = [tenant_id for tenant_id in current if tenant_id not in wanted]
    if gone:
        db.session.execute(delete(FeatureFlagOverride).where(
            FeatureFlagOverride.flag_id == flag.id, FeatureFlagOverride.tenant_id.in_(gone)))
    db.session.add_all(FeatureFlagOverride(flag_id=flag.id, tenant_id=tenant_id, enabled=value)
                       for tenant_id, value in wanted.items() if tenant_id not in current)
    for value in (True, False):
        flipped = [tenant_id for tenant_id, new in wanted.items()
                   if new == value and tenant_id in current and current[tenant_id] != new]
        if flipped:
            db.session.execute(update(FeatureFlagOverride).values(enabled=value).where(
                FeatureFlagOverride.flag_id == flag.id, FeatureFlagOverride.tenant_id.in_(flipped)))
    changed = current != wanted
    if changed:
        flag.updated_at = utcnow()  # an UPDATE of the flag row: a new version (and ETag)
    return changed


def _refuse_taken_key(key: str) -> None:
    """A clear 409; the unique key is what guarantees it (two creates at once: the second INSERT fails, 409)."""
    if db.session.scalar(select(FeatureFlag.id).where(FeatureFlag.key == key)) is not None:
        raise Conflict("A feature flag with this key exists.", errors={"key": ["Already taken."]})


def create_flag(*, actor, key: str, description: str, enabled: bool, rollout_basis_points: int | None,
                tenant_overrides: Overrides) -> FlagView:
    authorize(actor, "flags:create", PLATFORM)
    scope = _reader_scope(actor, "flags:read")
    _refuse_bad_tenants(tenant_overrides, {})
    _refuse_taken_key(key)
    flag = FeatureFlag(key=key, description=description, enabled=enabled, rollout_basis_points=rollout_basis_points)
    db.session.add(flag)
    db.session.flush()
    db.session.add_all(FeatureFlagOverride(flag_id=flag.id, tenant_id=tenant_id, enabled=value)
                       for tenant_id, value in tenant_overrides.items())
    db.session.flush()
    audit.record("flag.create", actor=actor, target_type="feature_flag", target_id=flag.key,
                 changes={"after": snapshot(flag, tenant_overrides)})
    [view] = _views([flag], scope)
    db.session.commit()
    return view


def update_flag(*, actor, key: str, changes: dict, if_match=None) -> FlagView:
    """Change fields; `tenant_overrides`, when given, replaces the whole map."""
    authorize(actor, "flags:update", PLATFORM)
    scope = _reader_scope(actor, "flags:read")
    flag = _find_flag(key, for_update=True)
    check_if_match(if_match, flag)
    current = _overrides([flag.id], None)[flag.id]
    wanted = changes.get("tenant_overrides", current)
    if "tenant_overrides" in changes:
        _refuse_bad_tenants(wanted, current)
    before = snapshot(flag, current)
    # Overrides first: their statements would flush changed fields in an UPDATE (a version) of their own.
    _replace_overrides(flag, current, wanted)
    for field in ("description", "enabled", "rollout_basis_points"):
        if field in changes:
            setattr(flag, field, changes[field])
    after = snapshot(flag, wanted)
    if after != before:
        db.session.flush()
        audit.record("flag.update", actor=actor, target_type="feature_flag", target_id=flag.key,
                     changes=audit.diff(before, after))
    [view] = _views([flag], scope)
    db.session.commit()
    return view


def delete_flag(*, actor, key: str, if_match=None) -> None:
    """Remove the flag and its overrides; the audit event keeps what it was."""
    authorize(actor, "flags:delete", PLATFORM)
    flag = _find_flag(key, for_update=True)
    check_if_match(if_match, flag)
    before = snapshot(flag, _overrides([flag.id], None)[flag.id])
    db.session.execute(delete(FeatureFlagOverride).where(FeatureFlagOverride.flag_id == flag.id))
    db.session.delete(flag)
    db.session.flush()  # DELETE ... WHERE version = the one read: a concurrent change makes this a 409
    audit.record("flag.delete", actor=actor, target_type="feature_flag", target_id=key, changes={"before": before})
    db.session.commit()


# --- one tenant's override (its tenant admin, or a platform admin) -----------------------------

def _override_target(actor, action: str, tenant_id: uuid.UUID):
    """The reader scope and the tenant; another tenant than the actor's is 404 unless it reads every tenant."""
    every_tenant = allowed(actor, "flags:read", PLATFORM)
    tenant = tenants.find_tenant(tenant_id) if every_tenant or tenant_id == actor.tenant_id else None
    if tenant is None:
        raise NotFound("Tenant not found.")
    authorize(actor, action, tenant)
    return (None if every_tenant else tenant.id), tenant


def set_override(*, actor, key: str, tenant_id: uuid.UUID, enabled: bool, if_match=None) -> FlagView:
    """Force the flag's value for one tenant. Idempotent: the same value again changes nothing, audits nothing."""
    flag = _find_flag(key, for_update=True)
    scope, tenant = _override_target(actor, "flags:set_override", tenant_id)
    check_if_match(if_match, flag)
    if tenant.is_deleted:
        raise Invalid(errors={"tenant_id": ["The tenant is deleted."]})
    current = _overrides([flag.id], tenant.id)[flag.id]
    if _replace_overrides(flag, current, {tenant.id: enabled}):
        db.session.flush()
        audit.record("flag.override_set", actor=actor, tenant_id=tenant.id, target_type="feature_flag",
                     target_id=flag.key, changes={"before": {"override": current.get(tenant.id)},
                                                  "after": {"override": enabled}})
    [view] = _views([flag], scope)
    db.session.commit()
    return view


def clear_override(*, actor, key: str, tenant_id: uuid.UUID, if_match=None) -> None:
    """Remove one tenant's override (a deleted tenant's too). Nothing to clear: nothing changes."""
    flag = _find_flag(key, for_update=True)
    _scope, tenant = _override_target(actor, "flags:clear_override", tenant_id)
    check_if_match(if_match, flag)
    current = _overrides([flag.id], tenant.id)[flag.id]
    if _replace_overrides(flag, current, {}):
        db.session.flush()
        audit.record("flag.override_clear", actor=actor, tenant_id=tenant.id, target_type="feature_flag",
                     target_id=flag.key, changes={"before": {"override": current[tenant.id]},
                                                  "after": {"override": None}})
    db.session.commit()


# --- evaluation -------------------------------------------------------------------------------

def _evaluation_subject(actor, tenant_id: uuid.UUID | None, user_id: uuid.UUID | None):
    """The tenant (None: platform level) and user (or None) to evaluate for; what the actor may not see is 404."""
    user = users.get_user(actor=actor, user_id=user_id) if user_id is not None else None
    if tenant_id is None:
        tenant_id = actor.tenant_id or (user.tenant_id if user is not None else None)
        if tenant_id is None and user is None:
            raise Invalid(errors={"tenant_id": ["Name a tenant (or a user_id): you belong to no tenant."]})
    tenant = tenants.find_tenant(tenant_id) if tenant_id is not None else None
    if tenant_id is not None and tenant is None:
        raise NotFound("Tenant not found.")
    require_visible(actor, "flags:evaluate", tenant or PLATFORM, what="Tenant")
    if user is not None and user.tenant_id != tenant_id:
        raise NotFound("User not found.")
    return tenant, user


# Every flag, with the tenant's override joined; the tenant is a bound parameter (NULL: no tenant, no override).
# Built once: evaluation is on the hot path of every page the console shows.
EVALUATION_QUERY = (
    select(FeatureFlag.key, FeatureFlag.enabled, FeatureFlag.rollout_basis_points, FeatureFlagOverride.enabled)
    .outerjoin(FeatureFlagOverride, and_(FeatureFlagOverride.flag_id == FeatureFlag.id,
                                         FeatureFlagOverride.tenant_id == bindparam("tenant_id")))
    .order_by(FeatureFlag.key)
)


def evaluate_flags(*, actor, tenant_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None
                   ) -> dict[str, Evaluation]:
    """Every flag's value for a tenant and user, in one query; the rules run in Python (see evaluation.py)."""
    tenant, user = _evaluation_subject(actor, tenant_id, user_id)
    subject = str(user.id if user is not None else tenant.id)
    rows = db.session.execute(EVALUATION_QUERY, {"tenant_id": tenant.id if tenant is not None else None})
    return {key: evaluate_flag(key=key, enabled=enabled, rollout_basis_points=rollout, override=forced,
                               subject=subject)
            for key, enabled, rollout, forced in rows}
