import uuid

from flask import request
from flask.views import MethodView

from admin_api.core.api import CREATED_HEADERS, LIST_HEADERS, Blueprint, created
from admin_api.core.pagination import page_response
from admin_api.core.security import auth_required, current_actor
from admin_api.tenants import service
from admin_api.tenants.schemas import TenantCreateSchema, TenantQueryArgsSchema, TenantSchema, TenantUpdateSchema

blp = Blueprint(
    "tenants", __name__, url_prefix="/api/v1/tenants",
    description=(
        "Tenants. Platform admins see and manage all; everyone else sees only their own tenant. "
        "Deleting is soft (`status: deleted`, `deleted_at`) and only platform admins delete or restore: from the "
        "delete on, the tenant's users cannot sign in and all their tokens are refused; after a restore they sign in "
        "again (users disabled on their own stay disabled; tokens issued before the delete stay dead). While a "
        "tenant is deleted its users cannot be created, changed, restored or have their password reset (409)."
    ),
)


@blp.route("")
class Tenants(MethodView):
    decorators = [auth_required()]

    @blp.arguments(TenantQueryArgsSchema, location="query")
    @blp.response(200, TenantSchema(many=True), headers=LIST_HEADERS)
    @blp.error(403, "Forbidden")
    def get(self, args):
        """List tenants"""
        return page_response(service.list_tenants(actor=current_actor(), args=args))

    @blp.arguments(TenantCreateSchema)
    @blp.response(201, TenantSchema, headers=CREATED_HEADERS)
    @blp.error(403, "Forbidden: platform admins only")
    @blp.error(409, "Slug already taken")
    def post(self, data):
        """Create a tenant"""
        tenant = service.create_tenant(actor=current_actor(), **data)
        return created(tenant, blp.url_prefix)


@blp.route("/<uuid:tenant_id>")
class TenantById(MethodView):
    decorators = [auth_required()]

    @blp.etag
    @blp.response(200, TenantSchema)
    @blp.error(404, "No such tenant (or not yours)")
    def get(self, tenant_id: uuid.UUID):
        """Get a tenant"""
        tenant = service.get_tenant(actor=current_actor(), tenant_id=tenant_id)
        blp.set_entity_etag(tenant)
        return tenant

    @blp.etag
    @blp.arguments(TenantUpdateSchema)
    @blp.response(200, TenantSchema)
    @blp.error(403, "Forbidden")
    @blp.error(404, "No such tenant (or not yours)")
    def patch(self, changes, tenant_id: uuid.UUID):
        """Rename a tenant"""
        tenant = service.update_tenant(actor=current_actor(), tenant_id=tenant_id, changes=changes,
                                       if_match=request.if_match)
        blp.set_entity_etag(tenant)
        return tenant

    @blp.etag
    @blp.response(204)
    @blp.error(403, "Forbidden: platform admins only")
    @blp.error(404, "No such tenant (or not yours)")
    @blp.error(409, "Already deleted")
    def delete(self, tenant_id: uuid.UUID):
        """Delete a tenant (soft: its users are locked out and their tokens refused)"""
        service.delete_tenant(actor=current_actor(), tenant_id=tenant_id, if_match=request.if_match)


@blp.route("/<uuid:tenant_id>/restore")
class TenantRestore(MethodView):
    decorators = [auth_required()]

    @blp.etag
    @blp.response(200, TenantSchema)
    @blp.error(403, "Forbidden: platform admins only")
    @blp.error(404, "No such tenant (or not yours)")
    @blp.error(409, "Not deleted")
    def post(self, tenant_id: uuid.UUID):
        """Restore a deleted tenant"""
        tenant = service.restore_tenant(actor=current_actor(), tenant_id=tenant_id, if_match=request.if_match)
        blp.set_entity_etag(tenant)
        return tenant
