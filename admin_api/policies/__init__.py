"""Policies: tenant and platform-wide Cedar policies, registered, listed, changed, and tried out in a dry-run."""
from admin_api.policies.routes import blp  # noqa: F401
