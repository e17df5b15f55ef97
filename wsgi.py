"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""
from admin_api import create_app

app = create_app()
