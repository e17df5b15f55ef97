"""Sign-in rules: throttling, uniform failures, token rotation and revocation."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import case, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from admin_api.auth.models import LoginThrottle, RevokedToken
from admin_api.core import audit
from admin_api.core.db import utcnow
from admin_api.core.errors import Invalid, TooManyRequests, Unauthorized
from admin_api.core.security import decode_refresh_token, issue_tokens, token_expiry, verify_password
from admin_api.extensions import db
from admin_api.tenants.models import Tenant
from admin_api.users.models import User

LOGIN_FAILED = "Invalid email or password."


# --- throttling --------------------------------------------------------------

def _throttle_keys(email: str, address: str | None) -> dict[str, int]:
    config = current_app.config
    keys = {f"account:{email}": config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]}
    if address:
        keys[f"address:{address}"] = config["LOGIN_MAX_FAILURES_PER_ADDRESS"]
    return keys


def _refuse_if_throttled(keys: dict[str, int]) -> None:
    window = timedelta(seconds=current_app.config["LOGIN_FAILURE_WINDOW"])
    now = utcnow()
    rows = db.session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys))).all()
    waits = [
        (row.window_started_at + window - now).total_seconds()
        for row in rows
        if row.failures >= keys[row.key] and row.window_started_at + window > now
    ]
    if waits:
        raise TooManyRequests(max(waits) + 1, "Too many failed sign-ins; try again later.")


def _count_failure(key: str) -> None:
    """Add one failure to the key's window (a new window when the old one is over), race-free."""
    now = utcnow()
    cutoff = now - timedelta(seconds=current_app.config["LOGIN_FAILURE_WINDOW"])
    insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stale = LoginThrottle.window_started_at < cutoff
    stmt = insert(LoginThrottle).values(key=key, failures=1, window_started_at=now, created_at=now, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[LoginThrottle.key],
        set_={
            "failures": case((stale, 1), else_=LoginThrottle.failures + 1),
            "window_started_at": case((stale, now), else_=LoginThrottle.window_started_at),
            "updated_at": now,
        },
    )
    db.session.execute(stmt)


def _clear_failures(key: str) -> None:
    row = db.session.get(LoginThrottle, key)
    if row is not None:
        db.session.delete(row)


# --- sign in -------------------------------------------------------------------

def _candidates(email: str, tenant_slug: str | None) -> list[User]:
    stmt = select(User).where(User.email == email)
    if tenant_slug is not None:
        stmt = stmt.join(Tenant, User.tenant_id == Tenant.id).where(Tenant.slug == tenant_slug)
    return list(db.session.scalars(stmt.limit(10)))


def _may_sign_in(user: User) -> bool:
    return user.is_active and (user.tenant is None or not user.tenant.is_deleted)


def login(*, email: str, password: str, tenant: str | None = None, address: str | None = None) -> dict:
    """Tokens for valid credentials. Every failure is the same 401, after the same work."""
    keys = _throttle_keys(email, address)
    _refuse_if_throttled(keys)
    candidates = _candidates(email, tenant)
    if not candidates:
        verify_password(None, password)  # same cost as a wrong password
        matches = []
    else:
        matches = [user for user in candidates if verify_password(user.password_hash, password) and _may_sign_in(user)]
    if not matches:
        for key in keys:
            _count_failure(key)
        only = candidates[0] if len(candidates) == 1 else None
        audit.record("auth.login_failed", actor_email=email, tenant_id=only.tenant_id if only else None,
                     target_type="user" if only else None, target_id=only.id if only else None)
        db.session.commit()
        raise Unauthorized(LOGIN_FAILED)
    if len(matches) > 1:
        db.session.rollback()
        raise Invalid("This email exists in several tenants: name the tenant (its slug).",
                      errors={"tenant": ["Required for this email."]})
    user = matches[0]
    _clear_failures(f"account:{email}")
    user.last_login_at = utcnow()
    audit.record("auth.login", actor=user, tenant_id=user.tenant_id, target_type="user", target_id=user.id)
    db.session.commit()
    return {**issue_tokens(user, password_change_only=user.must_change_password), "user": user}


# --- refresh and revoke ----------------------------------------------------------

def _revoke_jti(payload: dict, user_id) -> None:
    db.session.add(RevokedToken(jti=payload["jti"], user_id=user_id, expires_at=token_expiry(payload)))
    db.session.flush()


def refresh(*, user: User, payload: dict) -> dict:
    """Rotate: the presented refresh token dies, a new pair is issued. A reused one is refused."""
    try:
        _revoke_jti(payload, user.id)
    except IntegrityError:  # another request rotated this very token first
        db.session.rollback()
        raise Unauthorized("Token is revoked or no longer valid.")
    audit.record("auth.refresh", actor=user, tenant_id=user.tenant_id, target_type="user", target_id=user.id)
    db.session.commit()
    return {**issue_tokens(user, password_change_only=bool(payload.get("pwd_change"))), "user": user}


def revoke(*, user: User, payload: dict, refresh_token: str | None = None) -> None:
    """Revoke the presented token, and a refresh token of the same user if given."""
    payloads = [payload]
    if refresh_token is not None:
        other = decode_refresh_token(refresh_token)
        if other is None or other.get("sub") != str(user.id):
            raise Invalid(errors={"refresh_token": ["Not a valid refresh token of yours."]})
        if other["jti"] != payload["jti"]:
            payloads.append(other)
    already = set(db.session.scalars(select(RevokedToken.jti).where(RevokedToken.jti.in_([p["jti"] for p in payloads]))))
    for item in payloads:
        if item["jti"] not in already:
            _revoke_jti(item, user.id)
    audit.record("auth.revoke", actor=user, tenant_id=user.tenant_id, target_type="user", target_id=user.id,
                 changes={"revoked": [item.get("type") for item in payloads]})
    db.session.commit()
