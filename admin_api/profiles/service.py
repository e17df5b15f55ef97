"""Profile rules: who reads and edits which profile, the profile fields, the photo's life cycle.

A member reads and edits its own profile, a tenant admin those of its tenant,
a platform admin all (Cedar: profiles:read / profiles:update). Another tenant's
user answers 404. A disabled user keeps its profile and photo untouched until
it is restored: admins still read them, but changes are refused with 409.

Photo files: the new file is stored before the transaction that references
it; if that transaction fails, the new file is deleted; the old file is
deleted only after the commit that stopped referencing it. Concurrent
writers of one profile take turns on its row (a row lock, and the row's
version checked by the UPDATE), so they leave one file and one reference.
"""
from __future__ import annotations

import logging
import uuid
from typing import BinaryIO

from flask import current_app
from sqlalchemy import select

from admin_api.core import audit, storage
from admin_api.core.api import check_if_match
from admin_api.core.authz import authorize
from admin_api.core.db import dialect_insert, utcnow
from admin_api.core.errors import Conflict, NotFound
from admin_api.extensions import db
from admin_api.profiles import photos
from admin_api.profiles.models import EDITABLE, Photo, Profile, UserProfile
from admin_api.tenants import service as tenants
from admin_api.users import service as users
from admin_api.users.models import User

log = logging.getLogger("admin_api.profiles")


def _profile(user, row: UserProfile | None) -> Profile:
    return Profile(
        user_id=user.id,
        display_name=user.display_name,
        **{field: getattr(row, field) if row else None for field in EDITABLE},
        photo_etag=row.photo_etag if row else None,
        updated_at=row.updated_at if row else user.created_at,
        version=f"{user.version}.{row.version if row else 0}",
    )


def _snapshot(user, row: UserProfile) -> dict:
    return {"display_name": user.display_name, **{field: getattr(row, field) for field in EDITABLE}}


def _readable_user(actor, user_id: uuid.UUID):
    return users.get_user(actor=actor, user_id=user_id, action="profiles:read")


def _writable_user(actor, user_id: uuid.UUID):
    """The user whose profile the actor may change: visible (else 404), allowed (else 403), active (else 409)."""
    user = _readable_user(actor, user_id)
    authorize(actor, "profiles:update", user)
    if not user.is_active:
        raise Conflict("The user is disabled: its profile is kept as it is until the user is restored.")
    if user.tenant is not None and user.tenant.is_deleted:
        raise Conflict("The user's tenant is deleted; restore it first.")
    return user


def _still_writable(user) -> None:
    """Check again, inside the write transaction, what _writable_user checked before the slow part.

    A photo takes a second to decode: the user may have been disabled, or its
    tenant deleted, meanwhile. The user's status is read under a share lock (a
    concurrent disable waits for this commit, or committed first and is seen).
    """
    status = db.session.scalar(select(User.status).where(User.id == user.id).with_for_update(read=True))
    if status != "active":
        raise Conflict("The user is disabled: its profile is kept as it is until the user is restored.")
    tenants.require_active_tenant(user.tenant)


def _locked_row(user) -> UserProfile:
    """The user's profile row, created empty if missing, locked until commit: writers of one profile take turns.

    An empty row has version 0, like no row at all, so that the ETag a client read stays valid.

    (PostgreSQL locks the row; SQLite takes its write lock with the INSERT, so the read that follows is current.)
    """
    now = utcnow()
    db.session.execute(
        dialect_insert(UserProfile, db.session)
        .values(user_id=user.id, version=0, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=[UserProfile.user_id])
    )
    row = db.session.scalars(
        select(UserProfile).where(UserProfile.user_id == user.id).with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    _still_writable(user)
    return row


def _record(action: str, *, actor, user, changes: dict) -> None:
    audit.record(action, actor=actor, tenant_id=user.tenant_id, target_type="user", target_id=user.id,
                 changes=changes)


def get_profile(*, actor, user_id: uuid.UUID) -> Profile:
    user = _readable_user(actor, user_id)
    return _profile(user, db.session.get(UserProfile, user.id))


def update_profile(*, actor, user_id: uuid.UUID, changes: dict, if_match=None) -> Profile:
    """Replace the editable fields (display_name is the user's own); one `profile.update` event when any changed."""
    user = _writable_user(actor, user_id)
    row = _locked_row(user)
    check_if_match(if_match, _profile(user, row))
    before = _snapshot(user, row)
    if changes["display_name"] != user.display_name:
        user.display_name = changes["display_name"]
    for field in EDITABLE:
        if changes.get(field) != getattr(row, field):
            setattr(row, field, changes.get(field))
    after = _snapshot(user, row)
    if after == before:
        db.session.rollback()  # nothing changed: not even the empty row is kept
        return get_profile(actor=actor, user_id=user_id)
    row.updated_at = utcnow()  # also when only the display name changed: the profile did
    db.session.flush()
    _record("profile.update", actor=actor, user=user, changes=audit.diff(before, after))
    db.session.commit()
    return _profile(user, row)


def upload_photo(*, actor, user_id: uuid.UUID, photo: BinaryIO, if_match=None) -> Profile:
    """Decode, clean and store a new photo, then point the profile at it; the previous file goes after the commit."""
    user = _writable_user(actor, user_id)
    config = current_app.config
    processed = photos.process(photo, max_bytes=config["PHOTO_MAX_BYTES"], max_pixels=config["PHOTO_MAX_PIXELS"])
    name = storage.save(processed.data, prefix=user.id.hex, extension=processed.extension)
    try:
        row = _locked_row(user)
        check_if_match(if_match, _profile(user, row))
        previous, previous_etag = row.photo_name, row.photo_etag
        row.photo_name, row.photo_content_type, row.photo_etag = name, processed.content_type, processed.etag
        row.updated_at = utcnow()
        db.session.flush()
        _record("profile.photo_upload", actor=actor, user=user, changes={
            "before": {"photo": previous_etag},
            "after": {"photo": processed.etag, "content_type": processed.content_type,
                      "width": processed.width, "height": processed.height},
        })
        db.session.commit()
    except BaseException:
        db.session.rollback()
        storage.delete(name)  # never referenced
        raise
    if previous:
        storage.delete(previous)
    return _profile(user, row)


def get_photo(*, actor, user_id: uuid.UUID) -> Photo:
    user = _readable_user(actor, user_id)
    row = db.session.get(UserProfile, user.id)
    data = storage.read(row.photo_name) if row is not None and row.photo_name else None
    if data is None:
        if row is not None and row.photo_name:
            log.error("photo file %s of user %s is missing from the uploads folder", row.photo_name, user.id)
        raise NotFound("The user has no photo.")
    return Photo(data=data, content_type=row.photo_content_type, etag=row.photo_etag)


def delete_photo(*, actor, user_id: uuid.UUID, if_match=None) -> None:
    """Drop the reference, then (after the commit) the file."""
    user = _writable_user(actor, user_id)
    row = _locked_row(user)
    previous, previous_etag = row.photo_name, row.photo_etag
    if previous is None:
        db.session.rollback()
        raise NotFound("The user has no photo.")
    check_if_match(if_match, _profile(user, row))
    row.photo_name = row.photo_content_type = row.photo_etag = None
    row.updated_at = utcnow()
    db.session.flush()
    _record("profile.photo_delete", actor=actor, user=user, changes={"before": {"photo": previous_etag},
                                                                     "after": {"photo": None}})
    db.session.commit()
    storage.delete(previous)
