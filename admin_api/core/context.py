"""What the HTTP layer knows about the current request, for audit and logs.

Outside a request (CLI, tests calling services) every value is None.
"""
from __future__ import annotations

import re
import uuid

from flask import g, has_request_context, request

SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def assign_request_id() -> None:
    """Echo a sane client X-Request-ID, otherwise make one."""
    sent = request.headers.get("X-Request-ID", "")
    g.request_id = sent if SANE_REQUEST_ID.match(sent) else uuid.uuid4().hex


def request_meta() -> dict:
    if not has_request_context():
        return {"ip": None, "user_agent": None, "request_id": None}
    return {
        "ip": request.remote_addr,
        "user_agent": (request.user_agent.string or "")[:512] or None,
        "request_id": getattr(g, "request_id", None),
    }


def client_address() -> str | None:
    return request.remote_addr if has_request_context() else None
