"""Auth: sign in, refresh, revoke, who am I."""
from admin_api.auth.routes import blp  # noqa: F401
