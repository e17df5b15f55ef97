"""Profiles: a user's display name, title, bio, contact details and photo (the console's UserProfile screen)."""
from admin_api.profiles.routes import blp  # noqa: F401
