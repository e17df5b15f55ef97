"""Users: the people who sign in, in a tenant or on the platform."""
from admin_api.users.routes import blp  # noqa: F401
