"""The floor of this stack: bare Flask returning a fixed 25-item JSON list, under the same gunicorn settings."""
from flask import Flask, jsonify

app = Flask(__name__)
ITEMS = [
    {"id": f"00000000-0000-0000-0000-{n:012d}", "email": f"user{n}@example.test", "display_name": f"User {n}",
     "role": "member", "status": "active", "tenant_id": "00000000-0000-0000-0000-000000000001",
     "created_at": "2026-12-03T18:00:00+00:00", "updated_at": "2026-12-03T18:00:00+00:00",
     "disabled_at": None, "last_login_at": None, "must_change_password": False}
    for n in range(25)
]


@app.get("/api/v1/users")
def users():
    return jsonify(ITEMS)
