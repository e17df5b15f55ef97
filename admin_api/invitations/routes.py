import uuid

from flask import request
from flask.views import MethodView

from admin_api.auth.schemas import TokenSchema
from admin_api.core.api import CREATED_HEADERS, LIST_HEADERS, Blueprint, created
from admin_api.core.context import client_address
from admin_api.core.pagination import page_response
from admin_api.core.security import auth_required, current_actor
from admin_api.invitations import service
from admin_api.invitations.schemas import (
    InvitationAcceptSchema,
    InvitationCreateSchema,
    InvitationQueryArgsSchema,
    InvitationSchema,
    IssuedInvitationSchema,
)

blp = Blueprint(
    "invitations", __name__, url_prefix="/api/v1/invitations",
    description=(
        "Invitations into a tenant. Tenant admins invite `member`s and `tenant_admin`s into their own tenant, "
        "platform admins into any tenant (naming `tenant_id`); platform admins are never invited (422). Members "
        "cannot list or create invitations (403) and see none (404); another tenant's invitation answers 404. "
        "Emails are case-insensitive. The `token` is shown only by create and resend and stored as a hash; an "
        "invitation lives INVITATION_TTL seconds (default 7 days) and then shows `status: expired` (resend revives "
        "it with a new token). Revoking works while the tenant is deleted; creating and resending do not (409)."
    ),
)


@blp.route("")
class Invitations(MethodView):
    decorators = [auth_required()]

    @blp.arguments(InvitationQueryArgsSchema, location="query")
    @blp.response(200, InvitationSchema(many=True), headers=LIST_HEADERS)
    @blp.error(403, "Forbidden")
    @blp.error(404, "tenant_id names a tenant you cannot see")
    def get(self, args):
        """List invitations"""
        return page_response(service.list_invitations(actor=current_actor(), args=args))

    @blp.arguments(InvitationCreateSchema)
    @blp.response(201, IssuedInvitationSchema, headers=CREATED_HEADERS)
    @blp.error(403, "Forbidden")
    @blp.error(404, "tenant_id names a tenant you cannot see")
    @blp.error(409, "The email is a user of the tenant or has a pending invitation there, or the tenant is deleted")
    def post(self, data):
        """Invite an email address into a tenant (the answer shows the token once)"""
        return created(service.create_invitation(actor=current_actor(), **data), blp.url_prefix)


@blp.route("/<uuid:invitation_id>")
class InvitationById(MethodView):
    decorators = [auth_required()]

    @blp.etag
    @blp.response(200, InvitationSchema)
    @blp.error(404, "No such invitation (or not visible to you)")
    def get(self, invitation_id: uuid.UUID):
        """Get an invitation"""
        invitation = service.get_invitation(actor=current_actor(), invitation_id=invitation_id)
        blp.set_entity_etag(invitation)
        return invitation

    @blp.etag
    @blp.response(204)
    @blp.error(403, "Forbidden")
    @blp.error(404, "No such invitation (or not visible to you)")
    @blp.error(409, "Already accepted or revoked (an expired one can still be revoked, to close it for good)")
    def delete(self, invitation_id: uuid.UUID):
        """Revoke a pending invitation (its token stops working)"""
        service.revoke_invitation(actor=current_actor(), invitation_id=invitation_id, if_match=request.if_match)


@blp.route("/<uuid:invitation_id>/resend")
class InvitationResend(MethodView):
    decorators = [auth_required()]

    @blp.doc(description="Pending or expired invitations: a new token (shown this once) and a new expiry; "
                         "the old token stops working at once.")
    @blp.etag
    @blp.response(200, IssuedInvitationSchema)
    @blp.error(403, "Forbidden")
    @blp.error(404, "No such invitation (or not visible to you)")
    @blp.error(409, "Accepted or revoked; the email became a user or has another pending invitation; "
                    "or the tenant is deleted")
    def post(self, invitation_id: uuid.UUID):
        """Resend an invitation: new token, new expiry"""
        issued = service.resend_invitation(actor=current_actor(), invitation_id=invitation_id, if_match=request.if_match)
        blp.set_entity_etag(issued)
        return issued


@blp.route("/<uuid:invitation_id>/accept")
class InvitationAccept(MethodView):
    @blp.doc(security=[], description=(
        "No Authorization header needed: the token is the credential. Creates the user in the invitation's tenant "
        "with its role and signs it in. An unknown id and a wrong token get the same 404; only with the right "
        "token: already accepted 409, revoked or expired 410, tenant deleted 410, email already a user of the "
        "tenant 409. A refused password (422) leaves the invitation usable. Of concurrent accepts exactly one "
        "succeeds (the others 409). Attempts are limited like sign-ins, per client address (429)."))
    @blp.arguments(InvitationAcceptSchema)
    @blp.response(201, TokenSchema)
    @blp.error(404, "No such invitation, or a wrong token")
    @blp.error(409, "Already accepted, or the email is already a user of the tenant")
    @blp.error(410, "Revoked or expired, or the tenant is deleted")
    @blp.error(429, "Too many attempts (see Retry-After)")
    def post(self, data, invitation_id: uuid.UUID):
        """Accept an invitation: create your account and sign in"""
        return service.accept_invitation(invitation_id=invitation_id, **data, address=client_address())
