"""Sign-in rules: throttling, uniform failures, token rotation and revocation; password reset and change."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import delete, update
from sqlalchemy.orm.attributes import set_committed_value

from admin_api.auth.models import RevokedToken
from admin_api.core import audit, throttle
from admin_api.core.authz import authorize
from admin_api.core.db import dialect_insert, utcnow
from admin_api.core.errors import Gone, Invalid, Unauthorized
from admin_api.core.security import decode_refresh_token, issue_tokens, token_expiry, verify_password
from admin_api.extensions import db
from admin_api.users import passwords
from admin_api.users.models import User
from admin_api.users.service import PLATFORM_SCOPE, accounts_with_email

# One answer for every failure, the ambiguous email included (telling "this email is in several tenants"
# would confirm that it exists): the hint is part of every failed answer.
LOGIN_FAILED = ("Invalid email or password. If your email is used in several tenants, also send `tenant` "
                f'(the tenant\'s slug, or "{PLATFORM_SCOPE}" for a platform admin).')



def _throttle_keys(email: str, address: str | None) -> dict[str, int]:
    """Per account and client address (as Auth0 does: a stranger cannot lock you out), and per address."""
    config = current_app.config
    keys = {f"address:{address}": config["LOGIN_MAX_FAILURES_PER_ADDRESS"]} if address else {}
    keys[_account_key(email, address)] = config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]
    return keys  # the address first: once it is over its limit, no row is written for each new email it tries


def _account_key(email: str, address: str | None) -> str:
    return f"account:{address or '-'}:{email}"


def _may_sign_in(user: User) -> bool:
    return user.is_active and (user.tenant is None or not user.tenant.is_deleted)


def _refuse_ambiguous(email: str, password: str) -> None:
    """Several accounts share the address and no tenant was named: the usual 401, after the usual work.

    Decided by the email alone, never by the password (no password oracle across accounts).
    """
    verify_password(None, password)
    audit.record("auth.login_failed", actor_email=email, changes={"reason": "tenant required"})
    db.session.commit()
    raise Unauthorized(LOGIN_FAILED)


def login(*, email: str, password: str, tenant: str | None = None, address: str | None = None) -> dict:
    """Tokens for valid credentials. Every failure is the same 401, after the same work (one password hash)."""
    keys = _throttle_keys(email, address)
    throttle.reserve(keys, "Too many failed sign-ins; try again later.")
    candidates = accounts_with_email(email, tenant)
    if len(candidates) > 1:
        _refuse_ambiguous(email, password)
    user = candidates[0] if candidates else None
    if not (verify_password(user.password_hash if user else None, password) and _may_sign_in(user)):
        audit.record("auth.login_failed", actor_email=email, tenant_id=user.tenant_id if user else None,
                     target_type="user" if user else None, target_id=user.id if user else None)
        db.session.commit()
        raise Unauthorized(LOGIN_FAILED)
    account_key = _account_key(email, address)
    throttle.release(clear=account_key, give_back=tuple(key for key in keys if key != account_key))
    _record_sign_in(user)
    audit.record("auth.login", actor=user, tenant_id=user.tenant_id, target_type="user", target_id=user.id)
    # Made before the commit, from the password hash just verified: should a password change commit meanwhile,
    # these tokens name the old password and are refused (the commit would reload the user with the new one).
    tokens = issue_tokens(user, password_change_only=user.must_change_password)
    db.session.commit()
    return {**tokens, "user": user}


def _record_sign_in(user: User) -> None:
    """last_login_at, written without a new version: parallel sign-ins must not conflict with each other."""
    now = utcnow()
    db.session.execute(update(User).where(User.id == user.id).values(last_login_at=now)
                       .execution_options(synchronize_session=False))
    set_committed_value(user, "last_login_at", now)


# --- refresh and revoke ----------------------------------------------------------

def _revoke(payloads: list[dict], user_id) -> int:
    """Add the tokens' jtis to the revocation list; how many were not on it yet (the database decides races)."""
    now = utcnow()
    rows = [{"jti": p["jti"], "user_id": user_id, "expires_at": token_expiry(p), "created_at": now, "updated_at": now}
            for p in payloads]
    inserted = dialect_insert(RevokedToken, db.session).values(rows).on_conflict_do_nothing().returning(RevokedToken.jti)
    return len(db.session.execute(inserted).all())  # RETURNING, not rowcount: psycopg reports -1 here


def refresh(*, user: User, payload: dict) -> dict:
    """Rotate: the presented refresh token dies, a new pair is issued. A reused one is refused."""
    if _revoke([payload], user.id) != 1:  # another request rotated this very token first
        db.session.rollback()
        raise Unauthorized("Token is revoked or no longer valid.")
    audit.record("auth.refresh", actor=user, tenant_id=user.tenant_id, target_type="user", target_id=user.id)
    db.session.commit()
    return {**issue_tokens(user, password_change_only=bool(payload.get("pwd_change"))), "user": user}


def revoke(*, user: User, payload: dict, refresh_token: str | None = None) -> None:
    """Revoke the presented token, and a refresh token of the same user if given. Idempotent."""
    payloads = [payload]
    if refresh_token is not None:
        other = decode_refresh_token(refresh_token)
        if other is None or other.get("sub") != str(user.id):
            raise Invalid(errors={"refresh_token": ["Not a valid refresh token of yours."]})
        if other["jti"] != payload["jti"]:
            payloads.append(other)
    if _revoke(payloads, user.id):  # a concurrent revoke of the same tokens changed nothing: no second event
        audit.record("auth.revoke", actor=user, tenant_id=user.tenant_id, target_type="user", target_id=user.id,
                     changes={"revoked": [item.get("type") for item in payloads]})
    db.session.commit()


# --- passwords ---------------------------------------------------------------------

RESET_REFUSED = "This reset token is not valid (unknown, already used, expired or replaced by a newer one)."


def complete_password_reset(*, token: str, new_password: str, address: str | None = None) -> None:
    """Set a new password with a one-time reset token. Any unusable token gets the same 410, whatever the reason.

    Attempts are counted per client address before the token is looked up; a
    weak password (422) does not use the token up; of concurrent uses, one wins.
    """
    key = f"password-reset:{address or '-'}"
    throttle.reserve({key: current_app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"]},
                     "Too many password reset attempts; try again later.")
    user = passwords.reset_token_user(token)
    if user is None:
        raise Gone(RESET_REFUSED)
    passwords.check_new_password(user, new_password)
    if not passwords.consume_reset_token(user, token):
        db.session.rollback()
        raise Gone(RESET_REFUSED)
    passwords.set_password(user, new_password)
    throttle.release(give_back=(key,))
    audit.record("auth.password_reset", actor=user, tenant_id=user.tenant_id, target_type="user", target_id=user.id)
    db.session.commit()


def change_password(*, user: User, current_password: str, new_password: str) -> None:
    """The caller's own password. Every token of the caller dies, the one it called with included: sign in again.

    Wrong current passwords are counted per account (429 past the sign-in limit).
    """
    authorize(user, "users:change_password", user)
    key = f"change-password:{user.id}"
    throttle.reserve({key: current_app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]},
                     "Too many wrong passwords; try again later.")
    if not verify_password(user.password_hash, current_password):
        raise Invalid("The current password is not correct.", errors={"current_password": ["Incorrect password."]})
    if verify_password(user.password_hash, new_password):
        raise Invalid(errors={"new_password": ["Must differ from your current password."]})
    passwords.set_password(user, new_password)
    throttle.release(clear=key)
    audit.record("auth.change_password", actor=user, tenant_id=user.tenant_id, target_type="user", target_id=user.id)
    db.session.commit()


# --- housekeeping ------------------------------------------------------------------

def purge_expired() -> dict[str, int]:
    """Drop what can no longer matter: finished throttle windows, and revocations of tokens past their expiry
    (an expired token is refused for its `exp` alone)."""
    windows = throttle.purge_finished_windows()
    revocations = db.session.execute(delete(RevokedToken).where(RevokedToken.expires_at < utcnow())).rowcount
    db.session.commit()
    return {"throttle_windows": windows, "revoked_tokens": revocations}
