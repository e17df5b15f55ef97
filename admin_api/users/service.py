"""User rules: visibility by tenant, create, change, soft delete."""
from __future__ import annotations

import uuid

from sqlalchemy import func, or_, select, update

from admin_api.core import audit
from admin_api.core.api import check_if_match
from admin_api.core.authz import PLATFORM, allowed, authorize, require_visible
from admin_api.core.db import utcnow
from admin_api.core.errors import Conflict, Invalid, NotFound
from admin_api.core.pagination import ResultPage, paginate
from admin_api.core.security import hash_password, password_problems
from admin_api.extensions import db
from admin_api.tenants import service as tenants
from admin_api.tenants.service import contains
from admin_api.users.models import User, email_key

SORT_COLUMNS = {"email": User.email, "display_name": User.display_name, "created_at": User.created_at}


def snapshot(user: User) -> dict:
    return {"email": user.email, "display_name": user.display_name, "role": user.role, "status": user.status}


def list_users(*, actor, args: dict) -> ResultPage:
    stmt = select(User)
    filtered = any(key in args for key in ("tenant_id", "status", "role", "q"))
    if "tenant_id" in args:
        tenant = tenants.get_tenant(actor=actor, tenant_id=args["tenant_id"])
        authorize(actor, "users:list", tenant)
        stmt = stmt.where(User.tenant_id == tenant.id)
    elif not allowed(actor, "users:list", PLATFORM):
        # Not a platform-wide reader: the list is the actor's own tenant, if it may list that.
        if actor.tenant is None:
            authorize(actor, "users:list", PLATFORM)
        authorize(actor, "users:list", actor.tenant)
        stmt = stmt.where(User.tenant_id == actor.tenant_id)
        filtered = True
    if "status" in args:
        stmt = stmt.where(User.status == args["status"])
    if "role" in args:
        stmt = stmt.where(User.role == args["role"])
    if "q" in args:
        stmt = stmt.where(or_(contains(User.email, args["q"]), contains(User.display_name, args["q"])))
    return paginate(stmt, args=args, sort_columns=SORT_COLUMNS, id_column=User.id,
                    estimate_table=None if filtered else "users")


def get_user(*, actor, user_id: uuid.UUID, action: str = "users:read") -> User:
    """The user, if the actor may do `action` on it (a read); 404 otherwise, as for a missing one."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("User not found.")
    require_visible(actor, action, user, what="User")
    return user


def find_by_email(tenant_id: uuid.UUID | None, email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email_key == email_key(tenant_id, email)))


def _refuse_taken_email(tenant_id, email: str) -> None:
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
    if tenant is not None and tenant.is_deleted:
        raise Conflict("The tenant is deleted; restore it first.")
    if password is not None and (problems := password_problems(password, email=email)):
        raise Invalid(errors={"password": problems})
    _refuse_taken_email(tenant.id if tenant else None, email)
    user = User(
        tenant_id=tenant.id if tenant else None, email=email, email_key=email_key(tenant.id if tenant else None, email),
        display_name=display_name, role=role, status="active",
        password_hash=hash_password(password) if password else None,
    )
    db.session.add(user)
    db.session.flush()
    audit.record("user.create", actor=actor, tenant_id=user.tenant_id, target_type="user", target_id=user.id,
                 changes={"after": snapshot(user)})
    db.session.commit()
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
    if user.tenant is not None and user.tenant.is_deleted:
        raise Conflict("The user's tenant is deleted; restore it first.")
    if (new_role == "platform_admin") != (user.role == "platform_admin"):
        raise Invalid(errors={"role": ["Platform admins and tenant users cannot change into each other."]})
    if user.role == "platform_admin" and new_role != user.role and _active_platform_admins() <= 1:
        raise Conflict(LAST_ADMIN)
    if "email" in changes and changes["email"] != user.email:
        _refuse_taken_email(user.tenant_id, changes["email"])
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
    user = get_user(actor=actor, user_id=user_id)
    authorize(actor, "users:delete", user)
    check_if_match(if_match, user)
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
    stmt = update(User).where(User.id == user.id, User.status == "active")
    if user.role == "platform_admin":
        others = (select(func.count()).select_from(User)
                  .where(User.role == "platform_admin", User.status == "active", User.id != user.id))
        stmt = stmt.where(others.scalar_subquery() > 0)
    done = db.session.execute(
        stmt.values(status="disabled", disabled_at=now, tokens_valid_after=now, updated_at=now,
                    version=User.version + 1).execution_options(synchronize_session=False)
    ).rowcount == 1
    if done:
        db.session.refresh(user)
    return done


# --- operator commands (trusted: run on the server, no actor) --------------------

def first_active_platform_admin() -> User | None:
    return db.session.scalar(
        select(User).where(User.role == "platform_admin", User.status == "active").order_by(User.created_at).limit(1)
    )


def bootstrap_platform_admin(*, email: str, password: str) -> User:
    """A platform admin created from the command line (audited with actor 'cli')."""
    from marshmallow import ValidationError

    from admin_api.users.schemas import NormalizedEmail

    try:
        email = NormalizedEmail().deserialize(email)
    except ValidationError as exc:
        raise Invalid(errors={"email": exc.messages})
    if problems := password_problems(password, email=email):
        raise Invalid("Password refused.", errors={"password": problems})
    _refuse_taken_email(None, email)
    user = User(email=email, email_key=email_key(None, email), display_name="Platform admin",
                role="platform_admin", status="active", password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    audit.record("user.create", actor_email="cli", target_type="user", target_id=user.id,
                 changes={"after": snapshot(user)})
    db.session.commit()
    return user
