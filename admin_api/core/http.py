"""HTTP conventions for every request and response, in one place.

- A request body must come with a Content-Length: a chunked body would slip
  past MAX_CONTENT_LENGTH (werkzeug cuts it off silently), so it is refused (411).
- Answers are `Cache-Control: no-store` unless a view says otherwise: they
  hold accounts and tokens, which no shared or browser cache should keep.
- The `Bearer` scheme name is matched case-insensitively.
- A 401 says how to authenticate (`WWW-Authenticate: Bearer`, RFC 6750).
"""
from __future__ import annotations

from flask import request

from admin_api.core.errors import AppError


class LengthRequired(AppError):
    code = 411
    message = "Send the body with a Content-Length (chunked request bodies are not accepted)."


def _refuse_chunked_bodies() -> None:
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        raise LengthRequired()


def _canonical_bearer_scheme() -> None:
    """`bearer x` is `Bearer x`: the scheme name is case-insensitive (RFC 9110 11.1); flask-jwt-extended's is not."""
    scheme, _, credentials = request.environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme != "Bearer" and scheme.lower() == "bearer":
        request.environ["HTTP_AUTHORIZATION"] = f"Bearer {credentials}"


def _response_headers(response):
    response.headers.setdefault("Cache-Control", "no-store")
    if response.status_code == 413:
        response.headers["Connection"] = "close"  # the body was not read: the connection cannot carry another request
    if response.status_code == 401:
        response.headers.setdefault("WWW-Authenticate", 'Bearer realm="admin_api"')
    return response


def register_http_conventions(app) -> None:
    app.before_request(_refuse_chunked_bodies)
    app.before_request(_canonical_bearer_scheme)
    app.after_request(_response_headers)
