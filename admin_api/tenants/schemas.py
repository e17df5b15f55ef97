import marshmallow as ma

from admin_api.core.fields import Timestamp
from admin_api.core.pagination import ListArgsSchema

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


class TenantSchema(ma.Schema):
    id = ma.fields.UUID(dump_only=True)
    name = ma.fields.String(dump_only=True)
    slug = ma.fields.String(dump_only=True)
    status = ma.fields.String(dump_only=True, metadata={"enum": ["active", "deleted"]})
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)
    deleted_at = Timestamp(dump_only=True, allow_none=True)


class TenantCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    slug = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(SLUG_PATTERN, error="Lower-case letters, digits and '-', 2-63 characters."),
        metadata={"pattern": SLUG_PATTERN},
    )


class TenantUpdateSchema(ma.Schema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))


class TenantQueryArgsSchema(ListArgsSchema):
    SORT_FIELDS = ("name", "slug", "created_at")

    status = ma.fields.String(validate=ma.validate.OneOf(["active", "deleted"]))
    q = ma.fields.String(validate=ma.validate.Length(min=1, max=200), metadata={"description": "Name or slug contains."})
