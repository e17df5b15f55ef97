"""Attempt limits for anonymous credential checks: sign-in, invitation accept, password reset.

An attempt is counted *before* the credential is checked, atomically and in a
transaction of its own, so that parallel guesses cannot all slip past the limit
while the slow password hash runs; a success gives its attempt back.
Keys name what is limited, e.g. `account:<address>:<email>` and `address:<address>`.
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import case, delete, update

from admin_api.auth.models import LoginThrottle
from admin_api.core.db import dialect_insert, utcnow
from admin_api.core.errors import TooManyRequests
from admin_api.extensions import db


def _count_attempt(key: str):
    """One more attempt in the key's window (a new window once the old one is over); the row after it."""
    now = utcnow()
    cutoff = now - timedelta(seconds=current_app.config["LOGIN_FAILURE_WINDOW"])
    stale = LoginThrottle.window_started_at < cutoff
    stmt = dialect_insert(LoginThrottle, db.session).values(
        key=key, failures=1, window_started_at=now, created_at=now, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[LoginThrottle.key],
        set_={
            "failures": case((stale, 1), else_=LoginThrottle.failures + 1),
            "window_started_at": case((stale, now), else_=LoginThrottle.window_started_at),
            "updated_at": now,
        },
    ).returning(LoginThrottle.failures, LoginThrottle.window_started_at)
    return db.session.execute(stmt).one()


def reserve(keys: dict[str, int], message: str = "Too many attempts; try again later.") -> None:
    """Count this attempt under each key in order (committed at once); 429 at the first key over its limit.

    Keys after a refusing one are not counted: an address over its limit cannot add a row per email it tries.
    """
    window = timedelta(seconds=current_app.config["LOGIN_FAILURE_WINDOW"])
    now = utcnow()
    wait = None
    for key, limit in keys.items():
        failures, started = _count_attempt(key)
        if failures > limit:
            wait = (started + window - now).total_seconds()
            break
    _purge_now_and_then()
    db.session.commit()
    if wait is not None:
        raise TooManyRequests(wait + 1, message)


PURGE_EVERY = 500  # attempts per process between two purges of finished windows
_attempts_since_purge = 0


def _purge_now_and_then() -> None:
    global _attempts_since_purge
    _attempts_since_purge += 1
    if _attempts_since_purge >= PURGE_EVERY:
        _attempts_since_purge = 0
        purge_finished_windows()


def purge_finished_windows() -> int:
    """Forget the counters whose window is over (they would start afresh anyway); how many went."""
    cutoff = utcnow() - timedelta(seconds=current_app.config["LOGIN_FAILURE_WINDOW"])
    return db.session.execute(delete(LoginThrottle).where(LoginThrottle.window_started_at < cutoff)).rowcount


def release(*, clear: str | None = None, give_back: tuple[str, ...] = ()) -> None:
    """After a success: return this attempt to each `give_back` key, and forget the failures of `clear`.

    Part of the caller's transaction (committed with its change). Rows are locked in the order `reserve`
    counts them (the address keys first, then the account key), or two sign-ins could deadlock.
    """
    if give_back:
        db.session.execute(update(LoginThrottle).where(LoginThrottle.key.in_(give_back), LoginThrottle.failures > 0)
                           .values(failures=LoginThrottle.failures - 1))
    if clear is not None:
        db.session.execute(delete(LoginThrottle).where(LoginThrottle.key == clear))
