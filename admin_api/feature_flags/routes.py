import uuid

from flask import request
from flask.views import MethodView

from admin_api.core.api import LIST_HEADERS, Blueprint, etag_of
from admin_api.core.pagination import page_response
from admin_api.core.security import auth_required, current_actor
from admin_api.feature_flags import service
from admin_api.feature_flags.schemas import (
    EvaluateArgsSchema,
    FeatureFlagCreateSchema,
    FeatureFlagQueryArgsSchema,
    FeatureFlagSchema,
    FeatureFlagUpdateSchema,
    FlagEvaluationsSchema,
    OverrideSchema,
)

blp = Blueprint(
    "feature_flags", __name__, url_prefix="/api/v1/feature-flags",
    description=(
        "Feature flags, platform-wide and addressed by `key`. Everyone signed in reads them; platform admins create, "
        "change and delete them; a tenant admin sets and clears its own tenant's override. Platform admins see every "
        "tenant's entry in `tenant_overrides`, everyone else only its own tenant's. Every change, overrides included, "
        "gives the flag a new `version` and ETag and writes one audit event (`flag.create`, `flag.update`, "
        "`flag.delete`, `flag.override_set`, `flag.override_clear`); setting an override to the value it has, or "
        "clearing one that is not there, changes nothing and writes no event. An override event carries its tenant, "
        "so that tenant's admin sees it in its audit log. A deleted tenant's override stays (shown, and in force "
        "again if the tenant is restored); it can be cleared or kept, not set or changed (422). Deleting a flag "
        "removes it and its overrides; the audit event keeps what it was, and its key can be used again."
    ),
)

EVALUATION_DESCRIPTION = """Every flag's value for a tenant and optionally one of its users: `{key: {value, reason}}`.

Order: a tenant override wins, even over a disabled flag (`tenant_override`); else a disabled flag is off
(`flag_disabled`); else, with a rollout, the subject's sticky bucket decides (`rollout`); else the flag is on
(`default`). Bucket: the first 8 bytes of SHA-256 of `"<key>:<subject>"` (big-endian) modulo 10,000, in the rollout
when below the percentage x 100; the subject is `user_id`, or the tenant id when no user is named (lower-case UUID
with hyphens). The same in every process and release; raising a percentage only adds subjects.

Members evaluate for their tenant and themselves only; tenant admins for their tenant and any of its users; platform
admins for any tenant, or for a platform-level user (no tenant: no overrides). Another tenant, or a user you cannot
see or who is not of that tenant: 404."""


@blp.route("")
class FeatureFlags(MethodView):
    decorators = [auth_required()]

    @blp.arguments(FeatureFlagQueryArgsSchema, location="query")
    @blp.response(200, FeatureFlagSchema(many=True), headers=LIST_HEADERS)
    @blp.error(403, "Forbidden")
    def get(self, args):
        """List feature flags"""
        return page_response(service.list_flags(actor=current_actor(), args=args))

    @blp.arguments(FeatureFlagCreateSchema)
    @blp.response(201, FeatureFlagSchema)
    @blp.error(403, "Forbidden: platform admins only")
    @blp.error(409, "Key already taken")
    def post(self, data):
        """Create a feature flag"""
        flag = service.create_flag(actor=current_actor(), **data)
        return flag, 201, {"Location": f"{blp.url_prefix}/{flag.key}", "ETag": f'"{etag_of(flag)}"'}


@blp.route("/evaluate")
class FlagEvaluations(MethodView):
    decorators = [auth_required()]

    @blp.arguments(EvaluateArgsSchema, location="query")
    @blp.response(200, FlagEvaluationsSchema, description=EVALUATION_DESCRIPTION)
    @blp.error(404, "No such tenant or user (or not visible to you)")
    def get(self, args):
        """Evaluate every flag for a tenant and user"""
        return service.evaluate_flags(actor=current_actor(), **args)


@blp.route("/<string:key>")
class FeatureFlagByKey(MethodView):
    decorators = [auth_required()]

    @blp.etag
    @blp.response(200, FeatureFlagSchema)
    @blp.error(403, "Forbidden")
    @blp.error(404, "No such flag")
    def get(self, key: str):
        """Get a feature flag"""
        flag = service.get_flag(actor=current_actor(), key=key)
        blp.set_entity_etag(flag)
        return flag

    @blp.etag
    @blp.arguments(FeatureFlagUpdateSchema)
    @blp.response(200, FeatureFlagSchema)
    @blp.error(403, "Forbidden: platform admins only")
    @blp.error(404, "No such flag")
    @blp.error(409, "Changed by another request meanwhile")
    def patch(self, changes, key: str):
        """Change a feature flag (`tenant_overrides` replaces the map)"""
        flag = service.update_flag(actor=current_actor(), key=key, changes=changes, if_match=request.if_match)
        blp.set_entity_etag(flag)
        return flag

    @blp.etag
    @blp.response(204)
    @blp.error(403, "Forbidden: platform admins only")
    @blp.error(404, "No such flag")
    @blp.error(409, "Changed by another request meanwhile")
    def delete(self, key: str):
        """Delete a feature flag and its overrides"""
        service.delete_flag(actor=current_actor(), key=key, if_match=request.if_match)


@blp.route("/<string:key>/overrides/<uuid:tenant_id>")
class FlagOverride(MethodView):
    decorators = [auth_required()]

    @blp.etag
    @blp.arguments(OverrideSchema)
    @blp.response(200, FeatureFlagSchema)
    @blp.error(403, "Forbidden: your tenant's admins only")
    @blp.error(404, "No such flag, or no such tenant (or not yours)")
    @blp.error(409, "Changed by another request meanwhile")
    def put(self, data, key: str, tenant_id: uuid.UUID):
        """Set one tenant's override (idempotent; the tenant must not be deleted: 422)"""
        flag = service.set_override(actor=current_actor(), key=key, tenant_id=tenant_id, if_match=request.if_match,
                                    **data)
        blp.set_entity_etag(flag)
        return flag

    @blp.etag
    @blp.response(204)
    @blp.error(403, "Forbidden: your tenant's admins only")
    @blp.error(404, "No such flag, or no such tenant (or not yours)")
    @blp.error(409, "Changed by another request meanwhile")
    def delete(self, key: str, tenant_id: uuid.UUID):
        """Clear one tenant's override (idempotent)"""
        service.clear_override(actor=current_actor(), key=key, tenant_id=tenant_id, if_match=request.if_match)
