"""One JSON error shape for every failure: {code, status, message, errors?}.

Services raise the domain exceptions below; one set of handlers renders them,
werkzeug's HTTPExceptions, IntegrityError (409 without SQL) and anything else
(500 with the request id, never the exception text).
"""
from __future__ import annotations

import http
import logging

from flask import current_app, g, jsonify, request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from admin_api.extensions import db

log = logging.getLogger("admin_api.errors")


class AppError(Exception):
    code = 400
    message = "Bad request."

    def __init__(self, message: str | None = None, *, errors: dict | None = None, headers: dict | None = None,
                 extra: dict | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}  # more top-level fields, e.g. the id of a conflicting record


class Unauthorized(AppError):
    code = 401
    message = "Authentication required."


class Forbidden(AppError):
    code = 403
    message = "You are not allowed to do this."


class NotFound(AppError):
    code = 404
    message = "Not found."


class Conflict(AppError):
    code = 409
    message = "Conflicts with the current state."


class Gone(AppError):
    code = 410
    message = "No longer available."


class PreconditionFailed(AppError):
    code = 412
    message = "The resource changed since you read it (If-Match does not match its ETag)."


class PayloadTooLarge(AppError):
    code = 413
    message = "The request body is too large."


class UnsupportedMediaType(AppError):
    code = 415
    message = "Unsupported media type."


class Invalid(AppError):
    code = 422
    message = "Invalid input."


class TooManyRequests(AppError):
    code = 429
    message = "Too many attempts; try again later."

    def __init__(self, retry_after: int, message: str | None = None):
        super().__init__(message, headers={"Retry-After": str(max(1, int(retry_after)))})


def error_body(code: int, message: str, errors: dict | None = None) -> dict:
    body = {"code": code, "status": http.HTTPStatus(code).phrase, "message": message}
    if errors:
        body["errors"] = errors
    return body


def error_response(code: int, message: str, errors: dict | None = None, headers: dict | None = None,
                   extra: dict | None = None):
    response = jsonify({**error_body(code, message, errors), **(extra or {})})
    response.status_code = code
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle_app_error(error: AppError):
    return error_response(error.code, error.message, error.errors, error.headers, error.extra)


def handle_http_exception(error: HTTPException):
    if error.code == 304:
        return error.get_response()
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    if isinstance(errors, dict) and len(errors) == 1:
        [(location, inner)] = errors.items()
        # webargs nests by location; one location says nothing extra. Keep it when the messages are about
        # the whole input ({"json": ["Invalid JSON body."]}), so that `errors` stays field -> messages.
        if location in {"json", "query", "form", "files", "headers"} and isinstance(inner, dict):
            errors = inner
    message = data.get("message") or (
        "Invalid input: see errors." if errors else (error.description or http.HTTPStatus(error.code).phrase)
    )
    if error.code == 413:  # werkzeug refused the body from its Content-Length, before reading it
        config = current_app.config
        message = (f"The request body is too large (at most {config['MAX_CONTENT_LENGTH']} bytes; "
                   f"form fields other than files at most {config.get('MAX_FORM_MEMORY_SIZE')} bytes each).")
    headers = dict(data.get("headers") or {})
    if error.code == 405 and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    return error_response(error.code or 500, message, errors, headers)


def handle_integrity_error(error: IntegrityError):
    db.session.rollback()
    log.info("integrity error turned into 409: %s", type(error.orig).__name__)
    return error_response(409, "Conflicts with an existing record.")


def handle_stale_data(error: StaleDataError):
    """Another request changed the row between our read and our write (the version column decided).

    A client that sent If-Match asked for exactly this check: it gets 412, like a stale ETag read earlier.
    """
    db.session.rollback()
    if request.if_match:
        return error_response(412, PreconditionFailed.message)
    return error_response(409, "The record was changed by another request; read it again and retry.")


def handle_unexpected(error: Exception):
    db.session.rollback()
    request_id = getattr(g, "request_id", None)
    log.exception("unhandled error (request %s)", request_id)
    return error_response(500, f"Internal error. Quote request id {request_id} when reporting it.")


def register_error_handlers(app) -> None:
    app.register_error_handler(AppError, handle_app_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(IntegrityError, handle_integrity_error)
    app.register_error_handler(StaleDataError, handle_stale_data)
    app.register_error_handler(Exception, handle_unexpected)
