import unicodedata

import marshmallow as ma

from admin_api.core.fields import Text, Timestamp, invisible_characters
from admin_api.core.pagination import ListArgsSchema, sort_field
from admin_api.core.security import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from admin_api.users.models import ROLES, USER_STATUSES

DISPLAY_NAME_MAX = 100  # the profile screen's limit too (one rule for one field)


class NormalizedEmail(ma.fields.Email):
    """An email address, trimmed and lower-cased: one address whatever its case."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            # NFKC first: a full-width "ＡＢ@x" is the address "ab@x", not a look-alike second account.
            value = unicodedata.normalize("NFKC", value).strip().lower()
            if invisible_characters(value):
                raise ma.ValidationError("Must not contain control or invisible formatting characters.")
        return super()._deserialize(value, attr, data, **kwargs)


def new_password_field(**kwargs) -> ma.fields.String:
    """A password being set. The service applies the rules and names this field in its 422."""
    return ma.fields.String(load_only=True, validate=ma.validate.Length(max=MAX_PASSWORD_LENGTH), metadata={
        "description": f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters; not the email address, "
                       "not a commonly used password."}, **kwargs)


class UserSchema(ma.Schema):
    id = ma.fields.UUID(dump_only=True)
    tenant_id = ma.fields.UUID(dump_only=True, allow_none=True)
    email = ma.fields.String(dump_only=True)
    display_name = ma.fields.String(dump_only=True)
    role = ma.fields.String(dump_only=True, metadata={"enum": list(ROLES)})
    status = ma.fields.String(dump_only=True, metadata={"enum": list(USER_STATUSES)})
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)
    disabled_at = Timestamp(dump_only=True, allow_none=True)
    last_login_at = Timestamp(dump_only=True, allow_none=True)
    must_change_password = ma.fields.Boolean(dump_only=True)


class UserCreateSchema(ma.Schema):
    email = NormalizedEmail(required=True, validate=ma.validate.Length(max=320))
    display_name = Text(required=True, validate=ma.validate.Length(min=1, max=DISPLAY_NAME_MAX))
    role = ma.fields.String(required=True, validate=ma.validate.OneOf(ROLES))
    tenant_id = ma.fields.UUID(
        allow_none=True,
        metadata={"description": "Defaults to the caller's tenant. Must be absent for platform_admin."},
    )
    password = ma.fields.String(
        load_only=True,
        validate=ma.validate.Length(max=256),
        metadata={"description": "Optional. Without it the user cannot sign in until a password is set."},
    )


class UserUpdateSchema(ma.Schema):
    email = NormalizedEmail(validate=ma.validate.Length(max=320))
    display_name = Text(validate=ma.validate.Length(min=1, max=DISPLAY_NAME_MAX))
    role = ma.fields.String(validate=ma.validate.OneOf(ROLES))


class UserQueryArgsSchema(ListArgsSchema):
    sort = sort_field("email", "display_name", "created_at")

    tenant_id = ma.fields.UUID()
    status = ma.fields.String(validate=ma.validate.OneOf(USER_STATUSES))
    role = ma.fields.String(validate=ma.validate.OneOf(ROLES))
    q = ma.fields.String(validate=ma.validate.Length(min=1, max=200), metadata={"description": "Email or name contains."})


class PasswordResetRequestSchema(ma.Schema):
    """`{}` issues a reset token; `{new_password, temporary}` sets the password."""

    new_password = new_password_field()
    temporary = ma.fields.Boolean(metadata={
        "description": "Only with new_password. Default true: the user must change it at its next sign-in "
                       "(that sign-in's token opens only GET /auth/me and POST /auth/change-password)."})

    @ma.validates_schema
    def _temporary_goes_with_a_password(self, data, **kwargs):
        if "temporary" in data and "new_password" not in data:
            raise ma.ValidationError("Only with new_password.", "temporary")


class PasswordResetResultSchema(ma.Schema):
    user = ma.fields.Nested(UserSchema, dump_only=True)
    reset_token = ma.fields.String(dump_only=True, metadata={
        "description": "Only when a token was issued (body `{}`): shown this once, stored only as a hash. "
                       "Send it to POST /api/v1/auth/password-reset."})
    expires_at = Timestamp(dump_only=True, metadata={"description": "When the reset token stops working."})
