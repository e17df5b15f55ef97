import marshmallow as ma

from admin_api.users.schemas import NormalizedEmail, UserSchema, new_password_field


class SlugText(ma.fields.String):
    """A slug as a person types it: slugs are lower case, so `Tenant-A` names `tenant-a`."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip().lower()


class LoginSchema(ma.Schema):
    email = NormalizedEmail(required=True, validate=ma.validate.Length(max=320))
    password = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(min=1, max=1024))
    tenant = SlugText(
        validate=ma.validate.Length(min=1, max=63),
        metadata={"description": 'Tenant slug (case-insensitive), or "platform" for a platform admin; needed only '
                                 "when the email is used in several tenants."},
    )


class TokenSchema(ma.Schema):
    access_token = ma.fields.String()
    refresh_token = ma.fields.String()
    token_type = ma.fields.String(metadata={"enum": ["Bearer"]})
    expires_in = ma.fields.Integer(metadata={"description": "Access token lifetime in seconds."})
    user = ma.fields.Nested(UserSchema)


class RefreshSchema(ma.Schema):
    """No fields: the refresh token travels as the bearer token. An empty or absent body is fine; a field is a 422
    (a client sending `{"refresh_token": ...}` here is told, rather than silently ignored)."""


class RevokeSchema(ma.Schema):
    refresh_token = ma.fields.String(
        load_only=True, validate=ma.validate.Length(max=4096),
        metadata={"description": "A refresh token of yours to revoke as well."},
    )


class PasswordResetSchema(ma.Schema):
    token = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(min=1, max=256),
                             metadata={"description": "The reset token an admin issued (POST /users/{id}/reset-password)."})
    new_password = new_password_field(required=True)


class ChangePasswordSchema(ma.Schema):
    current_password = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(min=1, max=1024))
    new_password = new_password_field(required=True)
