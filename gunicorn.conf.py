"""gunicorn settings; each can be overridden by the environment variable in brackets."""
import json
import multiprocessing
import os

from gunicorn import util as gunicorn_util

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"  # [HOST, PORT]
workers = int(os.environ.get("WEB_CONCURRENCY", min(4, multiprocessing.cpu_count() * 2)))  # [WEB_CONCURRENCY]
threads = int(os.environ.get("GUNICORN_THREADS", 2))  # [GUNICORN_THREADS]
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))  # [GUNICORN_TIMEOUT]
graceful_timeout = 30
keepalive = 5
# The app writes one JSON line per request itself; gunicorn's access log would double it.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Refuse oversized request lines and headers early.
limit_request_line = 8190
limit_request_fields = 100

# gunicorn answers some malformed or oversized requests itself, before the app sees them; by default in
# HTML. Clients of this API read JSON errors everywhere, so those answers take the API's error shape.
_MESSAGES = {
    400: "Malformed HTTP request.",
    414: "The request line (method, path and query) is too long.",
    431: "Too many request headers, or one too large.",
    501: "Unsupported transfer coding.",
}


def _json_error(sock, status_int, reason, mesg):
    body = json.dumps({"code": status_int, "status": reason,
                       "message": _MESSAGES.get(status_int, reason)}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n")
    gunicorn_util.write_nonblock(sock, head.encode("latin-1") + body)


gunicorn_util.write_error = _json_error  # the one function gunicorn's workers answer such requests with
