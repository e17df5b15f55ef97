"""Tenants: the customers of the platform."""
from admin_api.tenants.routes import blp  # noqa: F401
