import marshmallow as ma
from flask.views import MethodView

from admin_api.core.api import Blueprint
from admin_api.health import service

blp = Blueprint("health", __name__, url_prefix="/", description="Probes. No authentication.")


class HealthSchema(ma.Schema):
    status = ma.fields.String()
    database = ma.fields.String()
    migrations = ma.fields.String()


@blp.route("/healthz")
class Health(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self):
        """The process is up"""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    @blp.error(503, "Database unreachable or migrations not at head")
    def get(self):
        """The database answers and its schema is at the latest migration"""
        return service.readiness()
