"""User rules: visibility by tenant, create, change, soft delete, restore, password reset."""
from __future__ import annotations

import uuid

from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from admin_api.core import audit
from admin_api.core.api import check_if_match
from admin_api.core.authz import PLATFORM, authorize, require_visible
from admin_api.core.db import guarded_update, utcnow
from admin_api.core.errors import Conflict, Invalid, NotFound
from admin_api.core.pagination import ResultPage, paginate
from admin_api.core.security import hash_password, password_problems
from admin_api.extensions import db
from admin_api.tenants import service as tenants
from admin_api.tenants.models import Tenant
from admin_api.tenants.service import contains
from admin_api.users import passwords
from admin_api.users.models import User, UserCount, email_key

SORT_COLUMNS = {"email": User.email, "display_name": User.display_name, "created_at": User.created_at}
OPERATOR = "cli"  # actor_email of what an operator did from the command line (a user actor's own email wins)


def snapshot(user: User) -> dict:
    return {"email": user.email, "display_name": user.display_name, "role": user.role, "status": user.status}


def list_users(*, actor, args: dict) -> ResultPage:
    scope = tenants.list_scope(actor=actor, action="users:list", tenant_id=args.get("tenant_id"))
    stmt = select(User) if scope is None else select(User).where(User.tenant_id == scope.id)
    if "status" in args:
        stmt = stmt.where(User.status == args["status"])
    if "role" in args:
        stmt = stmt.where(User.role == args["role"])
    if "q" in args:
        stmt = stmt.where(or_(contains(User.email, args["q"]), contains(User.display_name, args["q"])))
    if any(key in args for key in ("status", "role", "q")):
        return paginate(stmt, args=args, sort_columns=SORT_COLUMNS, id_column=User.id)
    # All of a tenant's users, or everyone's: the total is the database's count (UserCount), exact and read
    # in constant time per tenant, where counting 1,000,000 rows would cost a full index scan.
    kept = select(func.coalesce(func.sum(UserCount.users), 0))
    kept = kept if scope is None else kept.where(UserCount.scope_id == scope.id)
    return paginate(stmt, args=args, sort_columns=SORT_COLUMNS, id_column=User.id, kept_total=kept)


def get_user(*, actor, user_id: uuid.UUID, action: str = "users:read") -> User:
    """The user, if the actor may do `action` on it (a read); 404 otherwise, as for a missing one."""
    # The tenant comes in the same query: most rules about a user ask about its tenant next.
    user = db.session.get(User, user_id, options=[joinedload(User.tenant)])
    if user is None:
        raise NotFound("User not found.")
    require_visible(actor, action, user, what="User")
    return user


def _user_to_change(actor, user_id: uuid.UUID, action: str, if_match=None) -> User:
    """The user an action targets: visible to the actor (404), the action allowed (403), If-Match current (412)."""
    user = get_user(actor=actor, user_id=user_id)
    authorize(actor, action, user)
    check_if_match(if_match, user)
    return user


def find_by_email(tenant_id: uuid.UUID | None, email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email_key == email_key(tenant_id, email)))


def refuse_taken_email(tenant_id, email: str) -> None:
    """409 naming the existing user when the address is taken in the tenant (None: the platform)."""
    existing = find_by_email(tenant_id, email)
    if existing is not None:
        raise Conflict(
            f"A user with this email already exists here (status {existing.status}).",
            errors={"email": ["Already used by another user of this tenant."]},
            extra={"existing_user_id": str(existing.id), "existing_user_status": existing.status},
        )


def _target_tenant(actor, role: str, tenant_id):
    """The tenant a new user joins: the one named, else the actor's; none for platform admins."""
    if role == "platform_admin":
        if tenant_id is not None:
            raise Invalid(errors={"tenant_id": ["Platform admins belong to no tenant."]})
        return None
    if tenant_id is None:
        if actor.tenant_id is None:
            raise Invalid(errors={"tenant_id": ["Required for tenant users."]})
        tenant_id = actor.tenant_id
    return tenants.get_tenant(actor=actor, tenant_id=tenant_id)


def create_user(*, actor, email: str, display_name: str, role: str, tenant_id=None, password: str | None = None) -> User:
    tenant = _target_tenant(actor, role, tenant_id)
    authorize(actor, "users:create", tenant or PLATFORM, {"role": role})
    tenants.require_active_tenant(tenant)
    user = add_user(tenant=tenant, email=email, display_name=display_name, role=role, password=password)
    audit.record("user.create", actor=actor, tenant_id=user.tenant_id, target_type="user", target_id=user.id,
                 changes={"after": snapshot(user)})
    db.session.commit()
    return user


def add_user(*, tenant: Tenant | None, email: str, display_name: str, role: str, password: str | None) -> User:
    """A new active user of the tenant (None: the platform), flushed; the caller authorizes, audits and commits.

    The rules of every new account: the password rules (422 naming `password`),
    one address per tenant (409; the unique email_key decides races).
    """
    if password is not None and (problems := password_problems(password, email=email)):
        raise Invalid("Password refused.", errors={"password": problems})
    tenant_id = tenant.id if tenant else None
    refuse_taken_email(tenant_id, email)
    user = User(tenant_id=tenant_id, email=email, email_key=email_key(tenant_id, email), display_name=display_name,
                role=role, status="active", password_hash=hash_password(password) if password else None)
    db.session.add(user)
    db.session.flush()
    return user


def _active_platform_admins() -> int:
    """How many platform admins are active, their rows locked until commit.

    The lock (PostgreSQL; SQLite ignores it) makes two admins disabling each other
    take turns: the second one counts again after the first commits, and is refused.
    """
    locked = db.session.scalars(
        select(User.id).where(User.role == "platform_admin", User.status == "active")
        .order_by(User.id).with_for_update()
    )
    return len(locked.all())


def update_user(*, actor, user_id: uuid.UUID, changes: dict, if_match=None) -> User:
    user = get_user(actor=actor, user_id=user_id)
    new_role = changes.get("role", user.role)
    authorize(actor, "users:update", user, {"role": new_role})
    check_if_match(if_match, user)
    tenants.require_active_tenant(user.tenant)
    if (new_role == "platform_admin") != (user.role == "platform_admin"):
        raise Invalid(errors={"role": ["Platform admins and tenant users cannot change into each other."]})
    if user.role == "platform_admin" and new_role != user.role and _active_platform_admins() <= 1:
        raise Conflict(LAST_ADMIN)
    if "email" in changes and changes["email"] != user.email:
        refuse_taken_email(user.tenant_id, changes["email"])
        user.email_key = email_key(user.tenant_id, changes["email"])
    before = snapshot(user)
    for field, value in changes.items():
        setattr(user, field, value)
    after = snapshot(user)
    if after != before:
        db.session.flush()
        audit.record("user.update", actor=actor, tenant_id=user.tenant_id, target_type="user", target_id=user.id,
                     changes=audit.diff(before, after))
    db.session.commit()
    return user


def delete_user(*, actor, user_id: uuid.UUID, if_match=None) -> None:
    """Soft delete: disabled, every token refused from now on."""
    user = _user_to_change(actor, user_id, "users:delete", if_match)
    if user.id == actor.id:
        raise Conflict("You cannot delete yourself.")
    if not user.is_active:
        raise Conflict("The user is already disabled.")
    if user.role == "platform_admin" and _active_platform_admins() <= 1:
        raise Conflict(LAST_ADMIN)
    before = snapshot(user)
    if not _disable(user):
        db.session.rollback()
        raise Conflict("The user was disabled meanwhile, or is now the last active platform admin.")
    audit.record("user.delete", actor=actor, tenant_id=user.tenant_id, target_type="user", target_id=user.id,
                 changes=audit.diff(before, snapshot(user)))
    db.session.commit()


LAST_ADMIN = "This is the last active platform admin."


def _disable(user: User) -> bool:
    """Disable the user in one UPDATE whose conditions the database checks as it writes.

    Still active, and for a platform admin another one still active: on SQLite
    the check runs under the write lock, after any concurrent disable committed
    (the row locks of _active_platform_admins do that on PostgreSQL).
    """
    now = utcnow()
    conditions = [User.status == "active"]
    if user.role == "platform_admin":
        others = (select(func.count()).select_from(User)
                  .where(User.role == "platform_admin", User.status == "active", User.id != user.id))
        conditions.append(others.scalar_subquery() > 0)
    return guarded_update(user, *conditions, status="disabled", disabled_at=now, tokens_valid_after=now, updated_at=now)


def restore_user(*, actor, user_id: uuid.UUID, if_match=None) -> User:
    """Disabled -> active. It signs in again; tokens issued before it was disabled stay dead."""
    return _restore(_user_to_change(actor, user_id, "users:restore", if_match), actor=actor)


def _restore(user: User, *, actor) -> User:
    tenants.require_active_tenant(user.tenant)
    before = snapshot(user)
    # tokens_valid_after moves again: a sign-in that raced the disable cannot come back to life either.
    if not guarded_update(user, User.status == "disabled", status="active", disabled_at=None, tokens_valid_after=utcnow()):
        db.session.rollback()
        raise Conflict("The user is not disabled.")
    audit.record("user.restore", actor=actor, actor_email=OPERATOR, tenant_id=user.tenant_id, target_type="user",
                 target_id=user.id, changes=audit.diff(before, snapshot(user)))
    db.session.commit()
    return user


def reset_password(*, actor, user_id: uuid.UUID, new_password: str | None = None, temporary: bool = True,
                   if_match=None) -> dict:
    """Set the password (temporary: to be changed at next sign-in), or issue a one-time reset token.

    Either way every token of the user dies. Returns `{user}`, plus
    `{reset_token, expires_at}` when a token was issued (shown this once).
    """
    user = _user_to_change(actor, user_id, "users:reset_password", if_match)
    return _reset_password(user, actor=actor, new_password=new_password, temporary=temporary)


def _reset_password(user: User, *, actor, new_password: str | None, temporary: bool) -> dict:
    tenants.require_active_tenant(user.tenant)
    if not user.is_active:
        raise Conflict("The user is disabled; restore it first.")
    if new_password is None:
        issued = passwords.issue_reset_token(user)
        changes = {"method": "reset_token", "expires_at": issued["expires_at"]}
    else:
        passwords.set_password(user, new_password, temporary=temporary)
        issued, changes = {}, {"method": "password", "temporary": temporary}
    audit.record("user.reset_password", actor=actor, actor_email=OPERATOR, tenant_id=user.tenant_id,
                 target_type="user", target_id=user.id, changes=changes)
    db.session.commit()
    return {"user": user, **issued}


# --- accounts by email ---------------------------------------------------------

PLATFORM_SCOPE = "platform"  # the tenant "slug" that means "a platform admin" (reserved: no tenant may take it)


def accounts_with_email(email: str, tenant_slug: str | None = None) -> list[User]:
    """The accounts with this (normalized) email, at most two (enough to tell "ambiguous"): in one tenant,
    on the platform ("platform"), or anywhere when no slug is given.

    Anywhere, a platform admin's account comes first and alone: no tenant can make an operator's sign-in
    ambiguous by creating or inviting a user with the operator's address (its users then name their tenant).
    """
    stmt = select(User).where(User.email == email)
    if tenant_slug == PLATFORM_SCOPE:
        stmt = stmt.where(User.tenant_id.is_(None))
    elif tenant_slug is not None:
        stmt = stmt.join(Tenant, User.tenant_id == Tenant.id).where(Tenant.slug == tenant_slug)
    found = list(db.session.scalars(stmt.order_by(User.tenant_id.is_not(None)).limit(2)))
    return found[:1] if found and found[0].tenant_id is None else found


# --- operator commands (trusted: run on the server, no actor) --------------------

def normalize_email(email: str) -> str:
    """An address typed by an operator, normalized as the API does (422 naming `email` when invalid)."""
    from marshmallow import ValidationError

    from admin_api.users.schemas import NormalizedEmail

    try:
        return NormalizedEmail().deserialize(email)
    except ValidationError as exc:
        raise Invalid(errors={"email": exc.messages})


def operator_account(*, email: str, tenant_slug: str | None = None) -> User:
    """The one account an operator names: by email, and by tenant slug (or "platform") when the email is shared."""
    found = accounts_with_email(normalize_email(email), tenant_slug)
    if not found:
        raise NotFound("No user with this email" + (f" in {tenant_slug}." if tenant_slug else "."))
    if len(found) > 1:
        raise Invalid(f'This email has accounts in several tenants: name the tenant (its slug, or "{PLATFORM_SCOPE}").')
    return found[0]


def restore_user_as_operator(*, email: str, tenant_slug: str | None = None) -> User:
    return _restore(operator_account(email=email, tenant_slug=tenant_slug), actor=None)


def reset_password_as_operator(*, email: str, tenant_slug: str | None = None, new_password: str | None = None,
                               temporary: bool = True) -> dict:
    return _reset_password(operator_account(email=email, tenant_slug=tenant_slug), actor=None,
                           new_password=new_password, temporary=temporary)


def first_active_platform_admin() -> User | None:
    return db.session.scalar(
        select(User).where(User.role == "platform_admin", User.status == "active").order_by(User.created_at).limit(1)
    )


def bootstrap_platform_admin(*, email: str, password: str) -> User:
    """A platform admin created from the command line (audited with actor 'cli')."""
    user = add_user(tenant=None, email=normalize_email(email), display_name="Platform admin", role="platform_admin",
                    password=password)
    audit.record("user.create", actor_email=OPERATOR, target_type="user", target_id=user.id,
                 changes={"after": snapshot(user)})
    db.session.commit()
    return user
