"""Audit events: the read-only record of every change and sign-in."""
from admin_api.audit.routes import blp  # noqa: F401
