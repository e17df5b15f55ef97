"""All flask-smorest customisation: our Blueprint, list arguments, totals, ETags."""
from __future__ import annotations

from http import HTTPStatus

import flask_smorest
from flask_smorest.error_handler import ErrorSchema
from webargs.flaskparser import FlaskParser

from admin_api.core.errors import PreconditionFailed, error_body

LIST_HEADERS = {
    "X-Total-Count": {"description": "Total number of items (react-admin).", "schema": {"type": "integer"}},
    "X-Total-Count-Estimated": {
        "description": "`true` when X-Total-Count is the database's estimate (very large unfiltered lists).",
        "schema": {"type": "string"},
    },
    "X-Pagination": {"description": "flask-smorest pagination metadata (JSON).", "schema": {"type": "string"}},
}


class StrictParser(FlaskParser):
    """Unknown arguments are refused everywhere: a typo in a filter must not widen a list."""

    # None: the schema decides, and marshmallow schemas RAISE on unknown fields.
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None, "files": None,
    }


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest Blueprint where If-Match is optional (react-admin never sends it).

    When a client sends If-Match, the service compares it with the row's
    version (`check_if_match`), so the comparison happens on the row it changes.
    """

    ARGUMENTS_PARSER = StrictParser()

    def _check_precondition(self):
        return None

    def _verify_check_etag(self):
        return None

    def error(self, code: int, description: str | None = None):
        """Document an error response of this operation, in our JSON error shape."""
        return self.alt_response(code, schema=ErrorSchema, description=description or HTTPStatus(code).phrase)

    def set_entity_etag(self, entity) -> None:
        """ETag of a versioned row (and 304 when If-None-Match has it)."""
        self.set_etag(etag_data(entity))


def etag_data(entity) -> dict:
    return {"id": str(entity.id), "version": entity.version}


def etag_of(entity) -> str:
    """The ETag of a versioned row: changes whenever the row does."""
    return flask_smorest.Blueprint._generate_etag(etag_data(entity))


def check_if_match(if_match, entity) -> None:
    """Refuse a write when the client sent If-Match and it is stale (412)."""
    if if_match and not if_match.star_tag and etag_of(entity) not in if_match:
        raise PreconditionFailed()


ERROR_EXAMPLE = error_body(422, "Invalid input: see errors.", {"email": ["Not a valid email address."]})


def document_common_errors(api) -> None:
    """Every operation that needs a token documents its 401; every one may answer 500."""
    for operations in api.spec._paths.values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if operation.get("security") != []:
                operation["responses"].setdefault("401", "UNAUTHORIZED")
            operation["responses"].setdefault("500", "INTERNAL_SERVER_ERROR")
