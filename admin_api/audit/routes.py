import uuid

from flask.views import MethodView

from admin_api.audit import service
from admin_api.audit.schemas import AuditEventSchema, AuditQueryArgsSchema
from admin_api.core.api import LIST_HEADERS, Blueprint
from admin_api.core.pagination import page_response
from admin_api.core.security import auth_required, current_actor

blp = Blueprint(
    "audit", __name__, url_prefix="/api/v1/audit-events",
    description=(
        "The audit log, read-only (writes answer 405). Newest first. Every change and sign-in writes one event in "
        "the same transaction as the change. Tenant admins see their own tenant's events, including those a platform operator caused in it (with the "
        "operator's email, for accountability); `changes` never holds secrets."
    ),
)


@blp.route("")
class AuditEvents(MethodView):
    decorators = [auth_required()]

    @blp.arguments(AuditQueryArgsSchema, location="query")
    @blp.response(200, AuditEventSchema(many=True), headers=LIST_HEADERS)
    @blp.error(403, "Forbidden")
    @blp.error(404, "tenant_id names a tenant you cannot see")
    def get(self, args):
        """List audit events"""
        return page_response(service.list_events(actor=current_actor(), args=args))


@blp.route("/<uuid:event_id>")
class AuditEventById(MethodView):
    decorators = [auth_required()]

    @blp.etag
    @blp.response(200, AuditEventSchema)
    @blp.error(404, "No such event (or not visible to you)")
    def get(self, event_id: uuid.UUID):
        """Get an audit event"""
        return service.get_event(actor=current_actor(), event_id=event_id)
