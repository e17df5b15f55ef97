"""One JSON line per request on stderr, and X-Request-ID on every response.

The line holds method, path (never the query string), status, duration,
request id, user id and tenant id; never a body, header, password or token.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime

from flask import g, request

from admin_api.core.context import assign_request_id

access_log = logging.getLogger("admin_api.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # RFC 3339 in UTC, like the API's timestamps (formatTime gave local time without an offset).
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = {"ts": ts, "level": record.levelname, "logger": record.name}
        if isinstance(record.msg, dict):
            line.update(record.msg)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str) -> None:
    root = logging.getLogger("admin_api")
    if not any(getattr(h, "_admin_api", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._admin_api = True
        root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def _start():
    g.started = time.perf_counter()
    assign_request_id()


def _finish(response):
    response.headers["X-Request-ID"] = getattr(g, "request_id", "")
    user = getattr(g, "_jwt_extended_jwt_user", {}).get("loaded_user") if hasattr(g, "_jwt_extended_jwt_user") else None
    access_log.info({
        "method": request.method,
        "path": request.path,
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
        "request_id": g.get("request_id"),
        "user_id": str(user.id) if user is not None else None,
        "tenant_id": str(user.tenant_id) if user is not None and user.tenant_id else None,
    })
    return response


def register_request_log(app) -> None:
    configure_logging(app.config["LOG_LEVEL"])
    app.before_request(_start)
    app.after_request(_finish)
