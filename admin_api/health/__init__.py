"""Liveness and readiness probes for load balancers and orchestrators."""
from admin_api.health.routes import blp  # noqa: F401
