import math
from decimal import Decimal

import marshmallow as ma

from admin_api.core.fields import FullMatch, StrictBoolean, Text, Timestamp
from admin_api.core.pagination import ListArgsSchema, sort_field
from admin_api.feature_flags.evaluation import REASONS
from admin_api.feature_flags.models import KEY_PATTERN, as_percentage

RESERVED_KEYS = ("evaluate",)  # the path /feature-flags/evaluate must stay the evaluation
MAX_OVERRIDES = 10_000


def _not_reserved(key: str) -> None:
    if key in RESERVED_KEYS:
        raise ma.ValidationError(f"'{key}' is reserved.")


class Percentage(ma.fields.Float):
    """A percentage 0..100 with at most two decimals in JSON, hundredths of a percent (an int) inside."""

    default_error_messages = {
        "invalid": "Not a valid number.",
        "range": "Must be between 0 and 100.",
        "places": "At most two decimal places (0.01 % steps).",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid")
        if isinstance(value, float) and not math.isfinite(value):  # JSON parsers accept NaN and Infinity
            raise self.make_error("invalid")
        if not 0 <= value <= 100:
            raise self.make_error("range")
        hundredths = Decimal(str(value)) * 100  # str(): the number as written, not its binary approximation
        if hundredths != hundredths.to_integral_value():
            raise self.make_error("places")
        return int(hundredths)

    def _serialize(self, value, attr, obj, **kwargs):
        return as_percentage(value)


ROLLOUT_DESCRIPTION = (
    "Share of subjects (users, or the tenant when no user is named) that get the flag while it is enabled, "
    "0 to 100 with at most two decimals; null: no rollout, everyone gets `enabled`. Sticky: raising it only adds "
    "subjects."
)
ENABLED_DESCRIPTION = (
    "Off: off for everyone but the tenants forcing it on. On: on for everyone, or for the rollout's share when "
    "`rollout_percentage` is set. Tenant overrides win either way."
)
OVERRIDES_DESCRIPTION = (
    "Tenant id -> forced value for that tenant, which wins over `enabled` and the rollout. Platform admins see "
    "every tenant's entry; everyone else sees only its own tenant's."
)


def _rollout_field(**kwargs) -> Percentage:
    return Percentage(attribute="rollout_basis_points", allow_none=True,
                      metadata={"description": ROLLOUT_DESCRIPTION, "minimum": 0, "maximum": 100}, **kwargs)


class OverrideMap(ma.fields.Dict):
    """Tenant id -> forced value. Two spellings of one id (upper case, no hyphens) are refused, not merged:
    which of their values was meant?"""

    def _deserialize(self, value, attr, data, **kwargs):
        loaded = super()._deserialize(value, attr, data, **kwargs)
        if isinstance(value, dict) and len(loaded) < len(value):
            raise ma.ValidationError("Names a tenant more than once (in different spellings of its id).")
        return loaded


def _overrides_field(description: str = OVERRIDES_DESCRIPTION, **kwargs) -> ma.fields.Dict:
    return OverrideMap(keys=ma.fields.UUID(), values=StrictBoolean(), metadata={"description": description}, **kwargs)


class FeatureFlagSchema(ma.Schema):
    key = ma.fields.String(dump_only=True)
    description = ma.fields.String(dump_only=True)
    enabled = ma.fields.Boolean(dump_only=True, metadata={"description": ENABLED_DESCRIPTION})
    rollout_percentage = _rollout_field(dump_only=True)
    tenant_overrides = _overrides_field(dump_only=True)
    created_at = Timestamp(dump_only=True)
    updated_at = Timestamp(dump_only=True)
    version = ma.fields.Integer(dump_only=True, metadata={"description": "Grows with every change, overrides too."})


class FeatureFlagCreateSchema(ma.Schema):
    key = ma.fields.String(
        required=True,
        validate=[FullMatch(KEY_PATTERN, error="A lower-case letter, then lower-case letters, digits, '_', '.' or "
                                               "'-'; 2-64 characters."), _not_reserved],
        metadata={"pattern": KEY_PATTERN, "description": "Unique and immutable; `evaluate` is reserved."},
    )
    description = Text(multiline=True, load_default="", validate=ma.validate.Length(max=1000))
    enabled = StrictBoolean(load_default=False, metadata={"description": ENABLED_DESCRIPTION + " Default: off."})
    rollout_percentage = _rollout_field(load_default=None)
    tenant_overrides = _overrides_field("Tenant id -> forced value. Unknown or deleted tenants are refused.",
                                        load_default=dict, validate=ma.validate.Length(max=MAX_OVERRIDES))


class FeatureFlagUpdateSchema(ma.Schema):
    description = Text(multiline=True, validate=ma.validate.Length(max=1000))
    enabled = StrictBoolean(metadata={"description": ENABLED_DESCRIPTION})
    rollout_percentage = _rollout_field()
    tenant_overrides = _overrides_field(
        "Replaces the whole map. Unknown tenants are refused; so are deleted ones, unless their entry is kept as "
        "it is.", validate=ma.validate.Length(max=MAX_OVERRIDES))


class FeatureFlagQueryArgsSchema(ListArgsSchema):
    sort = sort_field("key", "created_at", "updated_at", default="key")

    q = ma.fields.String(validate=ma.validate.Length(min=1, max=200),
                         metadata={"description": "Key or description contains."})
    enabled = ma.fields.Boolean(metadata={"description": "The flag's `enabled` (its default value)."})


class OverrideSchema(ma.Schema):
    enabled = StrictBoolean(required=True, metadata={"description": "The value this tenant gets."})


class EvaluateArgsSchema(ma.Schema):
    tenant_id = ma.fields.UUID(metadata={"description": (
        "The tenant to evaluate for; defaults to yours. A platform admin, who has none, names it or a `user_id` "
        "(its tenant is then the user's); a platform-level user evaluates with no tenant (no overrides).")})
    user_id = ma.fields.UUID(metadata={"description": (
        "A user of that tenant, visible to you (members: only yourself); the rollout then buckets this user. "
        "Without it the tenant is the rollout's subject.")})


class FlagEvaluationsSchema(ma.Schema):
    """The body is a map: flag key -> {value, reason}, for every flag."""

    openapi = {  # what the document shows (core.api.Blueprint), since a map has no fixed fields to declare
        "type": "object",
        "description": "Flag key -> its value for the subject and why.",
        "additionalProperties": {
            "type": "object",
            "required": ["value", "reason"],
            "additionalProperties": False,
            "properties": {"value": {"type": "boolean"}, "reason": {"type": "string", "enum": list(REASONS)}},
        },
    }

    def dump(self, obj, *, many=None):
        return {key: evaluation._asdict() for key, evaluation in obj.items()}
