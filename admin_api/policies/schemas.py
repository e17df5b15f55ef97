import marshmallow as ma

from admin_api.core.fields import Text, Timestamp
from admin_api.core.pagination import ListArgsSchema, sort_field
from admin_api.policy.source import MAX_SOURCE_LENGTH

SOURCE_DESCRIPTION = (
    "Cedar policy text (one or more `permit`/`forbid` statements), validated against GET /api/v1/policies/schema. "
    "The server sets each statement's `@id` to the policy's id.")
MAX_DRY_RUN_REQUESTS = 100


def source_field(**kwargs) -> ma.fields.String:
    return ma.fields.String(validate=ma.validate.Length(min=1, max=MAX_SOURCE_LENGTH),
                            metadata={"description": SOURCE_DESCRIPTION}, **kwargs)


class PolicySchema(ma.Schema):
    id = ma.fields.UUID(dump_only=True)
    tenant_id = ma.fields.UUID(dump_only=True, allow_none=True,
                               metadata={"description": "null: a platform-wide policy (applies in every tenant)"})
    name = ma.fields.String(dump_only=True)
    description = ma.fields.String(dump_only=True)
    source = ma.fields.String(dump_only=True)
    enabled = ma.fields.Boolean(dump_only=True)
    version = ma.fields.Integer(dump_only=True, metadata={"description": "Increases with every change"})
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)


class PolicyCreateSchema(ma.Schema):
    name = Text(required=True, validate=ma.validate.Length(min=1, max=200),
                metadata={"description": "Unique in its scope (a tenant, or the platform), whatever its case"})
    description = Text(load_default="", multiline=True, validate=ma.validate.Length(max=2000))
    tenant_id = ma.fields.UUID(allow_none=True, metadata={
        "description": "The tenant the policy is for; absent or null: the caller's own tenant, and for a platform "
                       "admin (who has none) a platform-wide policy."})
    source = source_field(required=True)
    enabled = ma.fields.Boolean(load_default=True)


class PolicyUpdateSchema(ma.Schema):
    name = Text(validate=ma.validate.Length(min=1, max=200))
    description = Text(multiline=True, validate=ma.validate.Length(max=2000))
    source = source_field()
    enabled = ma.fields.Boolean()


class PolicyQueryArgsSchema(ListArgsSchema):
    sort = sort_field("name", "created_at", "updated_at")

    tenant_id = ma.fields.UUID()
    enabled = ma.fields.Boolean()


class ProblemSchema(ma.Schema):
    """A parse or validation problem of Cedar text."""

    message = ma.fields.String(dump_only=True)
    location = ma.fields.Dict(dump_only=True, allow_none=True, metadata={
        "description": "Where Cedar places it: `{policy, line, column}` (1-based statement number, line and "
                       "column of the statement's start); null when Cedar does not say."})


class EntityRefSchema(ma.Schema):
    type = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100),
                            metadata={"description": "An entity type of the schema, e.g. `User`"})
    id = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100),
                          metadata={"description": "The id of an existing entity (`platform` for Platform)"})


class DryRunRequestSchema(ma.Schema):
    principal = ma.fields.Nested(EntityRefSchema, required=True)
    action = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100),
                              metadata={"description": "An action of the schema, e.g. `users:delete`"})
    resource = ma.fields.Nested(EntityRefSchema, required=True)
    context = ma.fields.Dict(keys=ma.fields.String(), load_default=dict, metadata={
        "description": "The action's context as the API would pass it (e.g. `{\"role\": \"member\"}` for "
                       "users:create and users:update)"})


class DryRunSchema(ma.Schema):
    source = source_field(required=True)
    tenant_id = ma.fields.UUID(allow_none=True, metadata={
        "description": "The tenant the draft is for, as in POST /api/v1/policies (absent or null: the caller's "
                       "own tenant, for a platform admin a platform-wide draft)."})
    requests = ma.fields.List(ma.fields.Nested(DryRunRequestSchema), required=True,
                              validate=ma.validate.Length(min=1, max=MAX_DRY_RUN_REQUESTS))


class PolicyRefSchema(ma.Schema):
    id = ma.fields.String(dump_only=True)
    name = ma.fields.String(dump_only=True, allow_none=True)
    kind = ma.fields.String(dump_only=True, metadata={"enum": ["builtin", "registered", "draft", "guard"]})
    draft = ma.fields.Boolean(dump_only=True)


class EvaluationErrorSchema(ma.Schema):
    message = ma.fields.String(dump_only=True)
    policy = ma.fields.Nested(PolicyRefSchema, dump_only=True, allow_none=True,
                              metadata={"description": "The policy that failed (null: the request itself)"})


DECISION = {"enum": ["allow", "deny", None], "description": "null when the request could not be evaluated"}


class DryRunResultSchema(ma.Schema):
    decision = ma.fields.String(dump_only=True, allow_none=True, metadata=DECISION)
    decision_without_candidate = ma.fields.String(dump_only=True, allow_none=True, metadata=DECISION)
    changed = ma.fields.Boolean(dump_only=True)
    determining_policies = ma.fields.List(ma.fields.Nested(PolicyRefSchema), dump_only=True)
    errors = ma.fields.List(ma.fields.Nested(EvaluationErrorSchema), dump_only=True)


class DryRunAnswerSchema(ma.Schema):
    valid = ma.fields.Boolean(dump_only=True)
    errors = ma.fields.List(ma.fields.Nested(ProblemSchema), dump_only=True)
    results = ma.fields.List(ma.fields.Nested(DryRunResultSchema), dump_only=True)


class AttributeSchema(ma.Schema):
    type = ma.fields.String(dump_only=True)
    required = ma.fields.Boolean(dump_only=True)


class EntityTypeSchema(ma.Schema):
    name = ma.fields.String(dump_only=True)
    parents = ma.fields.List(ma.fields.String(), dump_only=True)
    attributes = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(AttributeSchema), dump_only=True)


class ActionSchema(ma.Schema):
    name = ma.fields.String(dump_only=True)
    principal_types = ma.fields.List(ma.fields.String(), dump_only=True)
    resource_types = ma.fields.List(ma.fields.String(), dump_only=True)
    context = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(AttributeSchema), dump_only=True)
    tenant_policies_may_permit = ma.fields.Boolean(dump_only=True, metadata={
        "description": "Whether a registered policy can grant it (to tenant users, inside their own tenant); "
                       "any registered policy can forbid it."})


class CedarSchemaSchema(ma.Schema):
    cedar = ma.fields.String(dump_only=True, metadata={"description": "The schema text the evaluator validates against"})
    entity_types = ma.fields.List(ma.fields.Nested(EntityTypeSchema), dump_only=True)
    actions = ma.fields.List(ma.fields.Nested(ActionSchema), dump_only=True)
