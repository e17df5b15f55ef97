import marshmallow as ma

from admin_api.core.fields import Timestamp
from admin_api.core.pagination import ListArgsSchema, sort_field


class AuditEventSchema(ma.Schema):
    id = ma.fields.UUID(dump_only=True)
    occurred_at = Timestamp(dump_only=True)
    action = ma.fields.String(dump_only=True)
    actor_id = ma.fields.UUID(dump_only=True, allow_none=True)
    actor_email = ma.fields.String(dump_only=True, allow_none=True)
    tenant_id = ma.fields.UUID(dump_only=True, allow_none=True)
    target_type = ma.fields.String(dump_only=True, allow_none=True)
    target_id = ma.fields.String(dump_only=True, allow_none=True)
    ip = ma.fields.String(dump_only=True, allow_none=True)
    user_agent = ma.fields.String(dump_only=True, allow_none=True)
    request_id = ma.fields.String(dump_only=True, allow_none=True)
    changes = ma.fields.Dict(dump_only=True, allow_none=True, metadata={"description": "before/after of changed fields"})


class AuditQueryArgsSchema(ListArgsSchema):
    sort = sort_field("occurred_at", default="-occurred_at")

    tenant_id = ma.fields.UUID()
    actor_id = ma.fields.UUID()
    action = ma.fields.String(validate=ma.validate.Length(min=1, max=64))
    target_type = ma.fields.String(validate=ma.validate.Length(min=1, max=32))
    target_id = ma.fields.String(validate=ma.validate.Length(min=1, max=64))
    since = Timestamp(metadata={"description": "RFC 3339, inclusive"})
    until = Timestamp(metadata={"description": "RFC 3339, exclusive"})
