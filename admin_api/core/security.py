"""Passwords (argon2id, policy) and tokens (issue, verify against revocation)."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, g
from flask_jwt_extended import create_access_token, create_refresh_token, current_user, decode_token, jwt_required
from sqlalchemy import exists, select
from sqlalchemy.orm import joinedload

from admin_api.core.errors import Forbidden, Unauthorized, error_response
from admin_api.extensions import db, jwt
from admin_api.policy.live import Revisions

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
COMMON_PASSWORDS = frozenset(
    line.strip().lower()
    for line in (Path(__file__).with_name("common_passwords.txt")).read_text().splitlines()
    if line.strip() and not line.startswith("#")
)


# --- passwords -------------------------------------------------------------

def _hasher() -> PasswordHasher:
    """One argon2id hasher per app, with the configured cost."""
    hasher = current_app.extensions.get("password_hasher")
    if hasher is None:
        config = current_app.config
        hasher = PasswordHasher(
            time_cost=config["PASSWORD_HASH_TIME_COST"],
            memory_cost=config["PASSWORD_HASH_MEMORY_COST"],
            parallelism=config["PASSWORD_HASH_PARALLELISM"],
        )
        current_app.extensions["password_hasher"] = hasher
        # Verified against when the account does not exist, so that an unknown
        # email costs the same work as a wrong password (no timing enumeration).
        current_app.extensions["dummy_password_hash"] = hasher.hash(secrets.token_urlsafe(16))
    return hasher


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-work check: a missing hash still costs one argon2id verification."""
    hasher = _hasher()
    try:
        if password_hash is None:
            hasher.verify(current_app.extensions["dummy_password_hash"], password)
            return False
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problems(password: str, *, email: str | None = None) -> list[str]:
    """The reasons a new password is refused (empty when it is acceptable)."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"Must be at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"Must be at most {MAX_PASSWORD_LENGTH} characters.")
    if not password.strip():
        problems.append("Must not be only spaces.")
    lowered = password.lower()
    if email and lowered in {email.lower(), email.lower().split("@")[0]}:
        problems.append("Must not be your email address.")
    if lowered in COMMON_PASSWORDS:
        problems.append("Is a commonly used password; choose another.")
    return problems


# --- opaque one-time tokens (reset, invitation) ----------------------------

def new_secret_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What is stored for a one-time token: its SHA-256 (the token has 256 bits of entropy)."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_digest(stored: str, token: str) -> bool:
    return hmac.compare_digest(stored, token_digest(token))


# --- JWTs ------------------------------------------------------------------

def now_us() -> int:
    return time.time_ns() // 1000


def issue_tokens(user, *, password_change_only: bool = False) -> dict:
    """An access and a refresh token for the user (claims: sub string, tenant, role)."""
    claims = {
        "tenant_id": str(user.tenant_id) if user.tenant_id else None,
        "role": user.role,
        "iat_us": now_us(),  # microsecond issue time, compared with tokens_valid_after
        "cred": credential_fingerprint(user),
    }
    if password_change_only:
        claims["pwd_change"] = True
    identity = str(user.id)
    return {
        "access_token": create_access_token(identity=identity, additional_claims=claims),
        "refresh_token": create_refresh_token(identity=identity, additional_claims=claims),
        "token_type": "Bearer",
        "expires_in": int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]),
    }


def credential_fingerprint(user) -> str:
    """Names the password a token was obtained with, without revealing anything about it (a keyed hash).

    A token is refused once the password changes, whatever the clocks say: a sign-in that checked the
    old password while a reset was committing must not come out with a live session.
    """
    key = current_app.config["JWT_SECRET_KEY"].encode()
    return hmac.new(key, (user.password_hash or "").encode(), hashlib.sha256).hexdigest()[:22]


def token_expiry(payload: dict) -> datetime:
    return datetime.fromtimestamp(payload["exp"], UTC)


def decode_refresh_token(token: str) -> dict | None:
    """The claims of a refresh token given in a body, or None if it is not one of ours."""
    try:
        payload = decode_token(token)
    except Exception:  # any decode failure means "not a valid refresh token"
        return None
    return payload if payload.get("type") == "refresh" and _well_formed(payload) else None


def _issued_before(payload: dict, instant: datetime | None) -> bool:
    return instant is not None and payload["iat_us"] < int(instant.timestamp() * 1_000_000)


def _token_user_statement():
    """The one query behind every authenticated request: the user, its tenant, whether the jti was revoked,
    and the revisions of the policies that apply to the user (its tenant's and the platform-wide ones).

    Built once (bind parameters for the user id and the jti) instead of per request.
    """
    from sqlalchemy import bindparam

    from admin_api.auth.models import RevokedToken
    from admin_api.policies.models import PLATFORM_SCOPE, PolicySetVersion
    from admin_api.users.models import User

    revoked = exists().where(RevokedToken.jti == bindparam("jti")).correlate(None)
    tenant_policies = select(PolicySetVersion.revision).where(PolicySetVersion.scope_id == User.tenant_id)
    platform_policies = (select(PolicySetVersion.revision).where(PolicySetVersion.scope_id == PLATFORM_SCOPE)
                         .correlate(None))
    return (select(User, revoked.label("revoked"), tenant_policies.scalar_subquery().label("tenant_policies"),
                   platform_policies.scalar_subquery().label("platform_policies"))
            .options(joinedload(User.tenant)).where(User.id == bindparam("user_id")))


_TOKEN_USER = None
TOKEN_TYPES = ("access", "refresh")
CLOCK_SKEW = 60  # seconds: workers' clocks may differ this much
# The exact forms we issue: anything else (a NUL or a lone surrogate in a jti once answered 500, and
# `{uuid}` or `urn:uuid:...` named the same user) is not our token.
_JTI = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CREDENTIAL = re.compile(r"[0-9a-f]{22}")
_SUBJECT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _well_formed(payload: dict) -> bool:
    """The claims every token we issue has: a known type, an expiry no further than our longest lifetime,
    an integer issue time not in the future, and a jti, credential fingerprint and subject in the exact forms
    we write them.

    The signature already proves we issued it; this refuses anything else that a leaked key could sign
    (a token without `exp`, or with one in the year 3000, would never expire).
    """
    jti, exp, issued_us = payload.get("jti"), payload.get("exp"), payload.get("iat_us")
    longest = max(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"], current_app.config["JWT_REFRESH_TOKEN_EXPIRES"])
    now = time.time()
    return (payload.get("type") in TOKEN_TYPES and isinstance(exp, (int, float)) and not isinstance(exp, bool)
            and exp <= now + longest + CLOCK_SKEW
            # an issue time in the future would outlive every "tokens issued before" cut (disable, tenant delete)
            and _is_integer(issued_us) and 0 < issued_us <= (now + CLOCK_SKEW) * 1_000_000
            and _spelled(_JTI, jti) and _spelled(_CREDENTIAL, payload.get("cred"))
            and _spelled(_SUBJECT, payload.get("sub")))


def _spelled(form: re.Pattern, value) -> bool:
    return isinstance(value, str) and form.fullmatch(value) is not None


def load_token_user(payload: dict):
    """The user a token speaks for, or None when the token must be refused.

    One query reads the user, its tenant, whether the jti was revoked and its policies' revisions, so every
    worker sees a revocation, a disable, a tenant delete or a policy change at once.
    """
    global _TOKEN_USER
    if not _well_formed(payload):
        return None
    user_id = uuid.UUID(payload["sub"])
    if _TOKEN_USER is None:
        _TOKEN_USER = _token_user_statement()
    row = db.session.execute(_TOKEN_USER, {"user_id": user_id, "jti": payload.get("jti", "")}).first()
    if row is None or row.revoked:
        return None
    user = row.User
    tenant = user.tenant
    if not user.is_active or (tenant is not None and tenant.is_deleted):
        return None
    if _issued_before(payload, user.tokens_valid_after):
        return None
    if not hmac.compare_digest(payload["cred"], credential_fingerprint(user)):
        return None  # the password changed since this token was issued
    if tenant is not None and _issued_before(payload, tenant.tokens_valid_after):
        return None
    user.policy_revisions = Revisions(row.tenant_policies, row.platform_policies)  # read by core.authz
    return user


def current_actor():
    """The signed-in user of this request (set by flask-jwt-extended's user loader)."""
    return current_user


def current_claims() -> dict:
    return getattr(g, "_jwt_extended_jwt", {}) or {}


def register_jwt_callbacks() -> None:
    """Every token failure is a 401 in our JSON error shape."""

    @jwt.user_lookup_loader
    def _lookup(_header, payload):
        return load_token_user(payload)

    @jwt.user_lookup_error_loader
    def _lookup_failed(_header, _payload):
        return error_response(401, "Token is revoked or no longer valid.")

    @jwt.revoked_token_loader
    def _revoked(_header, _payload):
        return error_response(401, "Token is revoked or no longer valid.")

    @jwt.expired_token_loader
    def _expired(_header, _payload):
        return error_response(401, "Token expired.")

    @jwt.invalid_token_loader
    def _invalid(reason):
        return error_response(401, "Invalid token.")

    @jwt.unauthorized_loader
    def _missing(reason):
        return error_response(401, "Missing bearer token (Authorization: Bearer <access token>).")


def auth_required(*, allow_password_change: bool = False, refresh: bool = False, any_type: bool = False):
    """jwt_required (access tokens; refresh ones with refresh=True; either with any_type), plus: a
    must-change-password token opens only the endpoints that allow it."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            claims = current_claims()
            if not (refresh or any_type) and claims.get("type") != "access":
                raise Unauthorized("Not an access token.")  # flask-jwt-extended only refuses refresh tokens here
            if claims.get("pwd_change") and not allow_password_change:
                raise Forbidden("You must change your password first: POST /api/v1/auth/change-password.")
            return view(*args, **kwargs)

        return jwt_required(refresh=refresh, verify_type=not any_type)(wrapper)

    return decorator
