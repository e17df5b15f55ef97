"""A user's credentials: setting a password, and the one-time reset token (issue, find, consume).

Helpers of the services (users.service, auth.service): they change the session
and flush, never commit, never authorize.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select

from admin_api.core.db import dialect_insert, utcnow
from admin_api.core.errors import Invalid
from admin_api.core.security import hash_password, new_secret_token, password_problems, token_digest
from admin_api.extensions import db
from admin_api.users.models import PasswordResetToken, User


def check_new_password(user: User, password: str, *, field: str = "new_password") -> None:
    """422 naming `field` unless the password meets the rules (length, not the email, not a common one)."""
    if problems := password_problems(password, email=user.email):
        raise Invalid(errors={field: problems})


def set_password(user: User, password: str, *, temporary: bool = False) -> None:
    """Store a new password; every token of the user issued until now dies, in every worker.

    With `temporary` the user must change it: its next sign-in opens only
    /auth/me and /auth/change-password. A versioned write: a concurrent change
    of the user makes it a 409.
    """
    check_new_password(user, password)
    user.password_hash = hash_password(password)
    user.must_change_password = temporary
    user.tokens_valid_after = utcnow()
    db.session.flush()


def issue_reset_token(user: User) -> dict:
    """A one-time reset token `{reset_token, expires_at}`; only its digest is stored, replacing any older token.

    Every token of the user issued until now dies, the previous reset token included.
    """
    token, now = new_secret_token(), utcnow()
    expires_at = now + timedelta(seconds=current_app.config["RESET_TOKEN_TTL"])
    row = {"token_digest": token_digest(token), "expires_at": expires_at, "created_at": now, "updated_at": now}
    stmt = dialect_insert(PasswordResetToken, db.session).values(user_id=user.id, **row)
    db.session.execute(stmt.on_conflict_do_update(index_elements=[PasswordResetToken.user_id], set_=row))
    user.tokens_valid_after = now  # the same instant as created_at: the new reset token itself stays valid
    db.session.flush()
    return {"reset_token": token, "expires_at": expires_at}


def _issued_before(instant: datetime, valid_after: datetime | None) -> bool:
    return valid_after is not None and instant < valid_after


def reset_token_user(token: str) -> User | None:
    """The user a reset token may still reset, or None: unknown, expired, superseded, or revoked since
    (a disable, a password change, a tenant delete all move tokens_valid_after past it)."""
    row = db.session.execute(select(PasswordResetToken, User).join(User, User.id == PasswordResetToken.user_id)
                             .where(PasswordResetToken.token_digest == token_digest(token))).first()
    if row is None:
        return None
    issued, user = row.PasswordResetToken.created_at, row.User
    tenant = user.tenant
    usable = (row.PasswordResetToken.expires_at > utcnow() and user.is_active
              and not _issued_before(issued, user.tokens_valid_after)
              and (tenant is None or (not tenant.is_deleted and not _issued_before(issued, tenant.tokens_valid_after))))
    return user if usable else None


def consume_reset_token(user: User, token: str) -> bool:
    """Use the token up in one conditional DELETE: of concurrent uses, exactly one gets True."""
    done = db.session.execute(
        delete(PasswordResetToken)
        .where(PasswordResetToken.user_id == user.id, PasswordResetToken.token_digest == token_digest(token),
               PasswordResetToken.expires_at > utcnow())
        .execution_options(synchronize_session=False))
    return done.rowcount == 1
