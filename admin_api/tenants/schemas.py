import marshmallow as ma

from admin_api.core.fields import FullMatch, Text, Timestamp
from admin_api.core.pagination import ListArgsSchema, sort_field

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
RESERVED_SLUGS = ("platform",)  # sign-in's name for the platform scope (users.service.PLATFORM_SCOPE)


def _not_reserved(slug: str) -> None:
    if slug in RESERVED_SLUGS:
        raise ma.ValidationError(f"'{slug}' is reserved.")


class TenantSchema(ma.Schema):
    id = ma.fields.UUID(dump_only=True)
    name = ma.fields.String(dump_only=True)
    slug = ma.fields.String(dump_only=True)
    status = ma.fields.String(dump_only=True, metadata={"enum": ["active", "deleted"]})
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)
    deleted_at = Timestamp(dump_only=True, allow_none=True)


class TenantCreateSchema(ma.Schema):
    name = Text(required=True, validate=ma.validate.Length(min=1, max=200))
    slug = ma.fields.String(
        required=True,
        validate=[FullMatch(SLUG_PATTERN, error="Lower-case letters, digits and '-', 2-63 characters."), _not_reserved],
        metadata={"pattern": SLUG_PATTERN},
    )


class TenantUpdateSchema(ma.Schema):
    name = Text(validate=ma.validate.Length(min=1, max=200))


class TenantQueryArgsSchema(ListArgsSchema):
    sort = sort_field("name", "slug", "created_at")

    status = ma.fields.String(validate=ma.validate.OneOf(["active", "deleted"]))
    q = ma.fields.String(validate=ma.validate.Length(min=1, max=200), metadata={"description": "Name or slug contains."})
