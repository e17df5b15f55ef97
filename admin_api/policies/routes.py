import uuid

from flask import request
from flask.views import MethodView

from admin_api.core.api import CREATED_HEADERS, LIST_HEADERS, Blueprint, created
from admin_api.core.pagination import page_response
from admin_api.core.security import auth_required, current_actor
from admin_api.policies import service
from admin_api.policies.schemas import (
    CedarSchemaSchema,
    DryRunAnswerSchema,
    DryRunSchema,
    PolicyCreateSchema,
    PolicyQueryArgsSchema,
    PolicySchema,
    PolicyUpdateSchema,
)
from admin_api.policy.source import MAX_SOURCE_LENGTH

blp = Blueprint(
    "policies", __name__, url_prefix="/api/v1/policies",
    description=(
        "Cedar policies registered for a tenant (by its tenant admins or a platform admin) or platform-wide (by "
        "platform admins). A tenant's enabled policies join the built-in role policies for every request of its "
        "users, from the next request on, in every worker; platform-wide ones join them in every tenant. Cedar's "
        "rules hold: forbid overrides permit, default deny, and a policy that fails to evaluate denies the request "
        "(audited as `authz.error`). Guard rails no policy can break: registered policies never apply to platform "
        "admins (they cannot be locked out); they may always forbid, but permit only what "
        "GET /policies/schema marks `tenant_policies_may_permit`, on the user's own tenant (a permit on another "
        "tenant's user changes nothing: still 404). Removing a policy is final; its audit events keep its text. "
        f"A tenant (and the platform) holds at most {service.MAX_POLICIES_PER_SCOPE} policies and "
        f"{service.MAX_SCOPE_SOURCE_LENGTH:,} characters of Cedar text in all (409 beyond); one policy's text is at "
        f"most {MAX_SOURCE_LENGTH:,} characters (422)."
    ),
)


@blp.route("")
class Policies(MethodView):
    decorators = [auth_required()]

    @blp.arguments(PolicyQueryArgsSchema, location="query")
    @blp.response(200, PolicySchema(many=True), headers=LIST_HEADERS)
    @blp.error(403, "Forbidden")
    @blp.error(404, "tenant_id names a tenant you cannot see")
    def get(self, args):
        """List policies"""
        return page_response(service.list_policies(actor=current_actor(), args=args))

    @blp.arguments(PolicyCreateSchema)
    @blp.response(201, PolicySchema, headers=CREATED_HEADERS)
    @blp.error(403, "Forbidden")
    @blp.error(404, "tenant_id names a tenant you cannot see")
    @blp.error(409, "Name already taken in this scope, tenant deleted, or the scope's limits reached")
    def post(self, data):
        """Register a policy"""
        policy = service.create_policy(actor=current_actor(), **data)
        return created(policy, blp.url_prefix)


@blp.route("/schema")
class PolicySchemaView(MethodView):
    decorators = [auth_required()]

    @blp.response(200, CedarSchemaSchema)
    @blp.error(403, "Forbidden: policy administrators only")
    def get(self):
        """Get the Cedar schema policies are validated against"""
        return service.cedar_schema(actor=current_actor())


@blp.route("/dry-run")
class PolicyDryRun(MethodView):
    decorators = [auth_required()]

    @blp.doc(description=(
        "Decides each request twice, with the draft added to the live policies and without it, through the same "
        "evaluator as enforcement; saves, audits and caches nothing. Invalid Cedar answers 200 with `valid: false` "
        "and the problems. A request naming an unknown action, entity type or entity (or one you cannot see) gets "
        "its own `errors` and null decisions. The draft applies where it would once registered: to the users of its "
        "tenant (platform-wide: of every tenant), never to platform admins."))
    @blp.arguments(DryRunSchema)
    @blp.response(200, DryRunAnswerSchema)
    @blp.error(403, "Forbidden")
    @blp.error(404, "tenant_id names a tenant you cannot see")
    def post(self, data):
        """Try a draft policy on sample requests"""
        return service.dry_run(actor=current_actor(), **data)


@blp.route("/<uuid:policy_id>")
class PolicyById(MethodView):
    decorators = [auth_required()]

    @blp.etag
    @blp.response(200, PolicySchema)
    @blp.error(404, "No such policy (or not visible to you)")
    def get(self, policy_id: uuid.UUID):
        """Get a policy"""
        policy = service.get_policy(actor=current_actor(), policy_id=policy_id)
        blp.set_entity_etag(policy)
        return policy

    @blp.etag
    @blp.arguments(PolicyUpdateSchema)
    @blp.response(200, PolicySchema)
    @blp.error(403, "Forbidden")
    @blp.error(404, "No such policy (or not visible to you)")
    @blp.error(409, "Name already taken in this scope, tenant deleted, scope's text limit reached, or changed "
                    "concurrently")
    def patch(self, changes, policy_id: uuid.UUID):
        """Change a policy's text, name, description or enabled flag"""
        policy = service.update_policy(actor=current_actor(), policy_id=policy_id, changes=changes,
                                       if_match=request.if_match)
        blp.set_entity_etag(policy)
        return policy

    @blp.etag
    @blp.response(204)
    @blp.error(403, "Forbidden")
    @blp.error(404, "No such policy (or not visible to you)")
    @blp.error(409, "Changed concurrently")
    def delete(self, policy_id: uuid.UUID):
        """Remove a policy"""
        service.delete_policy(actor=current_actor(), policy_id=policy_id, if_match=request.if_match)
