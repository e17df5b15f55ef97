"""The floors of this stack, under the same gunicorn settings as the app.

`/api/v1/users`: bare Flask returning a fixed 25-item JSON list (the floor).
`/api/v1/users-query`: bare Flask running the bare SQLAlchemy page query (first
25 users by creation time) on DATABASE_URL and returning them as JSON; no
auth, no policy, no count, no schema: what the full stack is measured against.
"""
import os

from flask import Flask, jsonify
from sqlalchemy import create_engine, text

from admin_api.config import normalize_database_url

app = Flask(__name__)
ITEMS = [
    {"id": f"00000000-0000-0000-0000-{n:012d}", "email": f"user{n}@example.test", "display_name": f"User {n}",
     "role": "member", "status": "active", "tenant_id": "00000000-0000-0000-0000-000000000001",
     "created_at": "2026-12-03T18:00:00+00:00", "updated_at": "2026-12-03T18:00:00+00:00",
     "disabled_at": None, "last_login_at": None, "must_change_password": False}
    for n in range(25)
]
_engine = None
PAGE_QUERY = text(
    "SELECT id, tenant_id, email, display_name, role, status, created_at, updated_at, disabled_at, last_login_at, "
    "must_change_password FROM users ORDER BY created_at DESC, id DESC LIMIT 25"
)


@app.get("/api/v1/users")
def users():
    return jsonify(ITEMS)


@app.get("/api/v1/users-query")
def users_query():
    global _engine
    if _engine is None:
        _engine = create_engine(normalize_database_url(os.environ["DATABASE_URL"]), pool_pre_ping=True)
    with _engine.connect() as connection:
        rows = connection.execute(PAGE_QUERY).mappings().all()
    return jsonify([{k: (str(v) if v is not None and not isinstance(v, (str, bool)) else v) for k, v in row.items()}
                    for row in rows])
