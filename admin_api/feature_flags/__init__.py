"""Feature flags: platform-wide switches with per-tenant overrides and sticky percentage rollouts."""
from admin_api.feature_flags.routes import blp  # noqa: F401
