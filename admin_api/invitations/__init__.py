"""Invitations: an address invited into a tenant with a role, accepted once with a token (the console's accept flow)."""
from admin_api.invitations.routes import blp  # noqa: F401
