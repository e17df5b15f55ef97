import marshmallow as ma

from admin_api.core.fields import Text, Timestamp
from admin_api.core.pagination import ListArgsSchema, sort_field
from admin_api.invitations.models import INVITABLE_ROLES, INVITATION_STATUSES
from admin_api.users.schemas import NormalizedEmail, new_password_field


class InvitationSchema(ma.Schema):
    id = ma.fields.UUID(dump_only=True)
    tenant_id = ma.fields.UUID(dump_only=True)
    email = ma.fields.String(dump_only=True)
    role = ma.fields.String(dump_only=True, metadata={"enum": list(INVITABLE_ROLES)})
    status = ma.fields.String(dump_only=True, attribute="current_status", metadata={
        "enum": list(INVITATION_STATUSES), "description": "`expired`: still pending, but past `expires_at`."})
    expires_at = Timestamp(dump_only=True)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)
    invited_by = ma.fields.UUID(dump_only=True, allow_none=True,
                                metadata={"description": "The user who invited; null: an operator (flask invitations create)."})
    accepted_at = Timestamp(dump_only=True, allow_none=True)
    accepted_user_id = ma.fields.UUID(dump_only=True, allow_none=True)
    revoked_at = Timestamp(dump_only=True, allow_none=True)


class IssuedInvitationSchema(InvitationSchema):
    """The invitation with its token: only in the answer that issued the token (create, resend)."""

    token = ma.fields.String(dump_only=True, metadata={
        "description": "Shown this once, stored only as a hash. The invitee sends it to "
                       "POST /api/v1/invitations/{id}/accept."})


class InvitationCreateSchema(ma.Schema):
    email = NormalizedEmail(required=True, validate=ma.validate.Length(max=320))
    role = ma.fields.String(required=True, validate=ma.validate.OneOf(
        INVITABLE_ROLES, error="Invitations are for tenant users: member or tenant_admin."))
    tenant_id = ma.fields.UUID(allow_none=True, metadata={
        "description": "Defaults to the caller's tenant; platform admins must name one."})


class InvitationQueryArgsSchema(ListArgsSchema):
    sort = sort_field("email", "created_at", "expires_at")

    tenant_id = ma.fields.UUID()
    status = ma.fields.String(validate=ma.validate.OneOf(INVITATION_STATUSES))
    email = NormalizedEmail(validate=ma.validate.Length(max=320),
                            metadata={"description": "This address exactly (case-insensitive)."})


class InvitationAcceptSchema(ma.Schema):
    token = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(min=1, max=256),
                             metadata={"description": "The token shown when the invitation was created or resent."})
    password = new_password_field(required=True)
    display_name = Text(required=True, validate=ma.validate.Length(min=1, max=200))
