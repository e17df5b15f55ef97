"""Invitation rules: invite an address into a tenant, list, revoke, resend, and accept (which creates the user)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from admin_api.core import audit, throttle
from admin_api.core.api import check_if_match
from admin_api.core.authz import authorize, require_visible
from admin_api.core.db import guarded_update, utcnow
from admin_api.core.errors import Conflict, Gone, Invalid, NotFound
from admin_api.core.pagination import ResultPage, paginate
from admin_api.core.security import issue_tokens, new_secret_token, same_digest, token_digest
from admin_api.extensions import db
from admin_api.invitations.models import Invitation, pending_key
from admin_api.tenants import service as tenants
from admin_api.tenants.models import Tenant
from admin_api.users import service as users

SORT_COLUMNS = {"email": Invitation.email, "created_at": Invitation.created_at, "expires_at": Invitation.expires_at}


class InvitationNotFound(NotFound):
    message = "Invitation not found."  # also the answer to a wrong token: ids cannot be probed


class InvitationGone(Gone):
    message = "This invitation was revoked or has expired; ask for a new one."


class InvitationAccepted(Conflict):
    message = "This invitation was already accepted."


class InvitationTenantDeleted(Gone):
    message = "The tenant of this invitation is deleted."


class EmailTaken(Conflict):
    message = "This email already belongs to a user of the tenant: sign in instead."


@dataclass(frozen=True)
class IssuedInvitation:
    """An invitation and its token, which only the answer that issued it shows (create, resend)."""

    invitation: Invitation
    token: str

    def __getattr__(self, name: str):
        return getattr(self.invitation, name)  # the invitation's fields, for its schema, Location and ETag


def snapshot(invitation: Invitation) -> dict:
    return {"email": invitation.email, "role": invitation.role, "status": invitation.current_status,
            "expires_at": invitation.expires_at}


# --- reading ---------------------------------------------------------------------------

def _status_is(status: str) -> list:
    """Conditions for a shown status: "expired" is a pending invitation past its expiry."""
    now = utcnow()
    if status == "pending":
        return [Invitation.status == "pending", Invitation.expires_at > now]
    if status == "expired":
        return [Invitation.status == "pending", Invitation.expires_at <= now]
    return [Invitation.status == status]


def list_invitations(*, actor, args: dict) -> ResultPage:
    scope = tenants.list_scope(actor=actor, action="invitations:list", tenant_id=args.get("tenant_id"))
    stmt = select(Invitation) if scope is None else select(Invitation).where(Invitation.tenant_id == scope.id)
    if "email" in args:
        stmt = stmt.where(Invitation.email == args["email"])
    if "status" in args:
        stmt = stmt.where(*_status_is(args["status"]))
    return paginate(stmt, args=args, sort_columns=SORT_COLUMNS, id_column=Invitation.id)


def get_invitation(*, actor, invitation_id: uuid.UUID) -> Invitation:
    """The invitation, if the actor may read it; 404 otherwise, as for a missing one."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None:
        raise InvitationNotFound()
    require_visible(actor, "invitations:read", invitation, what="Invitation")
    return invitation


def _invitation_to_change(actor, invitation_id: uuid.UUID, action: str, if_match) -> Invitation:
    """The invitation an action targets: visible (404), the action allowed (403), If-Match current (412)."""
    invitation = get_invitation(actor=actor, invitation_id=invitation_id)
    authorize(actor, action, invitation)
    check_if_match(if_match, invitation)
    return invitation


# --- inviting ----------------------------------------------------------------------------

def _new_expiry() -> datetime:
    return utcnow() + timedelta(seconds=current_app.config["INVITATION_TTL"])


def _claim_pending_key(tenant_id: uuid.UUID, email: str, *, holder: uuid.UUID | None = None) -> str:
    """The pending key of the address in the tenant, once nothing stands in the way of a (new) pending invitation.

    409 when the address is a user of the tenant or has another pending invitation
    there. Expired invitations give their key up (they show "expired" either way).
    The unique index on pending_key decides races (409).
    """
    users.refuse_taken_email(tenant_id, email)
    key = pending_key(tenant_id, email)
    db.session.execute(update(Invitation).where(Invitation.pending_key == key, Invitation.expires_at <= utcnow())
                       .values(pending_key=None, updated_at=Invitation.updated_at)
                       .execution_options(synchronize_session=False))
    if _other_pending(key, holder) is not None:
        raise Conflict("This email already has a pending invitation to this tenant.",
                       errors={"email": ["Already invited: resend or revoke that invitation."]})
    return key


def _other_pending(key: str, holder: uuid.UUID | None) -> uuid.UUID | None:
    """Another invitation pending under the key, if any (not `holder`)."""
    stmt = select(Invitation.id).where(Invitation.pending_key == key)
    if holder is not None:
        stmt = stmt.where(Invitation.id != holder)
    return db.session.scalar(stmt)


def create_invitation(*, actor, email: str, role: str, tenant_id: uuid.UUID | None = None) -> IssuedInvitation:
    if tenant_id is None and actor.tenant_id is None:
        raise Invalid(errors={"tenant_id": ["Required: name the tenant to invite into."]})
    tenant = tenants.get_tenant(actor=actor, tenant_id=tenant_id or actor.tenant_id)
    authorize(actor, "invitations:create", tenant, {"role": role})
    return _invite(tenant, actor=actor, email=email, role=role)


def _invite(tenant: Tenant, *, actor, email: str, role: str) -> IssuedInvitation:
    tenants.require_active_tenant(tenant)
    token = new_secret_token()
    invitation = Invitation(
        tenant_id=tenant.id, email=email, role=role, status="pending", pending_key=_claim_pending_key(tenant.id, email),
        token_digest=token_digest(token), expires_at=_new_expiry(), invited_by=getattr(actor, "id", None),
    )
    db.session.add(invitation)
    db.session.flush()
    audit.record("invitation.create", actor=actor, actor_email=users.OPERATOR, tenant_id=tenant.id,
                 target_type="invitation", target_id=invitation.id, changes={"after": snapshot(invitation)})
    db.session.commit()
    return IssuedInvitation(invitation, token)


def create_invitation_as_operator(*, email: str, tenant_slug: str, role: str) -> IssuedInvitation:
    """An invitation made from the command line (trusted: no actor; audited with actor 'cli')."""
    return _invite(tenants.tenant_by_slug(tenant_slug), actor=None, email=users.normalize_email(email), role=role)


def resend_invitation(*, actor, invitation_id: uuid.UUID, if_match=None) -> IssuedInvitation:
    """A new token and expiry for a pending or expired invitation; the old token stops working."""
    invitation = _invitation_to_change(actor, invitation_id, "invitations:resend", if_match)
    if invitation.status != "pending":
        raise Conflict(f"The invitation is {invitation.status}: only pending or expired invitations are resent.")
    tenants.require_active_tenant(invitation.tenant)
    key = _claim_pending_key(invitation.tenant_id, invitation.email, holder=invitation.id)
    before, token = snapshot(invitation), new_secret_token()
    if not guarded_update(invitation, Invitation.status == "pending", pending_key=key,
                          token_digest=token_digest(token), expires_at=_new_expiry()):
        db.session.rollback()
        raise Conflict("The invitation was accepted or revoked meanwhile.")
    audit.record("invitation.resend", actor=actor, tenant_id=invitation.tenant_id, target_type="invitation",
                 target_id=invitation.id, changes=audit.diff(before, snapshot(invitation)))
    db.session.commit()
    return IssuedInvitation(invitation, token)


def revoke_invitation(*, actor, invitation_id: uuid.UUID, if_match=None) -> None:
    """Pending (expired ones too: an admin closes them for good, resend could revive them) -> revoked: its token
    stops working. Accepted or revoked ones: 409."""
    invitation = _invitation_to_change(actor, invitation_id, "invitations:revoke", if_match)
    before, now = snapshot(invitation), utcnow()
    if not guarded_update(invitation, Invitation.status == "pending",
                          status="revoked", revoked_at=now, pending_key=None):
        db.session.rollback()
        raise Conflict(f"Only a pending invitation can be revoked; this one is {invitation.current_status}.")
    audit.record("invitation.revoke", actor=actor, tenant_id=invitation.tenant_id, target_type="invitation",
                 target_id=invitation.id, changes=audit.diff(before, snapshot(invitation)))
    db.session.commit()


# --- accepting ---------------------------------------------------------------------------

NO_DIGEST = "0" * 64  # compared against when the id is unknown: the same work as for a wrong token


def _throttle_keys(invitation_id: uuid.UUID, address: str | None) -> dict[str, int]:
    """As sign-in: per client address, and per address and invitation (the invitation's "account")."""
    config = current_app.config
    return {f"invitation-accept:{address or '-'}": config["LOGIN_MAX_FAILURES_PER_ADDRESS"],
            f"invitation-accept:{address or '-'}:{invitation_id}": config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]}


def _usable_invitation(invitation_id: uuid.UUID, token: str) -> Invitation:
    """The invitation the token opens. The token is checked before anything about the invitation is told:
    unknown id or wrong token 404 (the same answer); then accepted 409, revoked or expired 410, tenant deleted 410."""
    invitation = db.session.get(Invitation, invitation_id)
    matches = same_digest(invitation.token_digest if invitation else NO_DIGEST, token)  # constant time
    if invitation is None or not matches:
        raise InvitationNotFound()
    if invitation.status == "accepted":
        raise InvitationAccepted()
    if invitation.status == "revoked" or invitation.is_expired:
        raise InvitationGone()
    tenants.require_active_tenant(invitation.tenant, refusal=InvitationTenantDeleted)
    return invitation


def accept_invitation(*, invitation_id: uuid.UUID, token: str, password: str, display_name: str,
                      address: str | None = None) -> dict:
    """Create the invited user and sign it in: `{user, access_token, refresh_token, ...}`.

    One conditional UPDATE takes the invitation (of concurrent accepts exactly one
    gets it, the others 409), then the user is inserted (the unique email key
    decides "email taken meanwhile"), all in one transaction. A refused password
    (422) leaves the invitation usable.
    """
    keys = _throttle_keys(invitation_id, address)
    throttle.reserve(keys, "Too many attempts to accept an invitation; try again later.")
    invitation = _usable_invitation(invitation_id, token)
    now = utcnow()
    if not guarded_update(invitation, Invitation.status == "pending", Invitation.expires_at > now,
                          Invitation.token_digest == token_digest(token),
                          status="accepted", accepted_at=now, pending_key=None):
        db.session.rollback()
        _usable_invitation(invitation_id, token)  # says what happened meanwhile (accepted, revoked, resent, ...)
        raise Conflict("The invitation changed meanwhile; try again.")
    user = _invited_user(invitation, password=password, display_name=display_name)
    invitation.accepted_user_id = user.id
    user.last_login_at = now  # accepting signs the new user in
    address_key, invitation_key = keys
    throttle.release(clear=invitation_key, give_back=(address_key,))
    audit.record("invitation.accept", actor=user, tenant_id=invitation.tenant_id, target_type="invitation",
                 target_id=invitation.id, changes={"before": {"status": "pending"},
                                                   "after": {"status": "accepted", "accepted_user_id": user.id}})
    tokens = issue_tokens(user)  # before the commit, as a sign-in does (core.security.credential_fingerprint)
    db.session.commit()
    return {**tokens, "user": user}


def _invited_user(invitation: Invitation, *, password: str, display_name: str):
    """The new user, by the rules of every new account (users.add_user); a refusal undoes the accept."""
    try:
        return users.add_user(tenant=invitation.tenant, email=invitation.email, display_name=display_name,
                              role=invitation.role, password=password)
    except Invalid:
        db.session.rollback()  # a refused password: the invitation stays usable
        raise
    except Conflict:
        db.session.rollback()
        raise EmailTaken()  # without the existing user's id: the caller is not signed in
