"""All flask-smorest customisation: our Blueprint, list arguments, totals, ETags."""
from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus

import flask_smorest
import marshmallow as ma
from flask import current_app, request
from flask_smorest.exceptions import NotModified
from webargs.core import missing
from webargs.flaskparser import FlaskParser, is_json_request

from admin_api.core.errors import AppError, Invalid, PreconditionFailed, UnsupportedMediaType, error_body

LIST_HEADERS = {
    "X-Total-Count": {"description": "Total number of items (react-admin).", "schema": {"type": "integer"}},
    "X-Total-Count-Estimated": {
        "description": "`true` when X-Total-Count is the database's estimate (very large unfiltered lists).",
        "schema": {"type": "string"},
    },
    "X-Pagination": {"description": "flask-smorest pagination metadata (JSON).", "schema": {"type": "string"}},
}


CREATED_HEADERS = {
    "Location": {"description": "The URL of the new resource.", "schema": {"type": "string"}},
    "ETag": {"description": "The new resource's ETag (for a later If-Match).", "schema": {"type": "string"}},
}


def created(entity, url_prefix: str):
    """Return value for a create view: the entity, 201, and its Location and ETag."""
    return entity, 201, {"Location": f"{url_prefix}/{entity.id}", "ETag": f'"{etag_of(entity)}"'}


class ErrorSchema(ma.Schema):
    """The body of every 4xx/5xx answer (documentation only; errors.error_response builds it).

    It lists every top-level field an error may carry: the document says
    additionalProperties: false, so a field missing here is an undocumented answer.
    """

    code = ma.fields.Integer(required=True, metadata={"description": "HTTP status code"})
    status = ma.fields.String(required=True, metadata={"description": "HTTP status phrase"})
    message = ma.fields.String(required=True, metadata={"description": "What went wrong, for a human"})
    errors = ma.fields.Dict(metadata={"description": "Field name -> list of messages (nested for nested fields)"})
    existing_user_id = ma.fields.UUID(
        metadata={"description": "409 on a duplicate email: the user who has it (the console offers Restore)"})
    existing_user_status = ma.fields.String(
        metadata={"description": "409 on a duplicate email: that user's status", "enum": ["active", "disabled"]})
    problems = ma.fields.List(ma.fields.Dict(), metadata={
        "description": "422 on Cedar policy text: each problem as `{message, location}`, location `{policy, line, "
                       "column}` where Cedar places it (null otherwise)"})


class StrictParser(FlaskParser):
    """Unknown arguments are refused everywhere: a typo in a filter must not widen a list."""

    # None: the schema decides, and marshmallow schemas RAISE on unknown fields.
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None, "files": None,
    }

    def pre_load(self, location_data, *, schema, req, location):
        """Refuse, with 422, text the database cannot store and input nested deeper than any of ours.

        PostgreSQL text cannot hold U+0000 and no database takes a lone UTF-16
        surrogate: without this such values came back as 500s.
        """
        problem = _input_problem(location_data) or (_upload_problem(req) if location == "files" else None)
        if problem:
            raise ma.ValidationError(problem)
        if location in ("query", "querystring"):
            repeated = {key: ["Give this argument once."] for key in req.args
                        if len(req.args.getlist(key)) > 1 and not isinstance(schema.fields.get(key), ma.fields.List)}
            if repeated:  # `page=1&page=2`: which did the client mean? (as with a field named twice in JSON)
                raise ma.ValidationError(repeated)
        return location_data

    def load_files(self, req, schema):
        """Files come in a multipart/form-data body; a body of another media type is 415, not "missing photo"."""
        if req.mimetype != "multipart/form-data" and req.content_length:
            raise UnsupportedMediaType("Send the file as multipart/form-data.")
        return super().load_files(req, schema)

    def _raw_load_json(self, req):
        """The JSON body; a body of another media type is 415 (not "missing fields"), a hostile one 422."""
        if not is_json_request(req):
            if req.get_data(cache=True):
                raise UnsupportedMediaType("Send the body as JSON (Content-Type: application/json).")
            return missing
        try:
            return json.loads(req.get_data(cache=True).decode("utf-8"), object_pairs_hook=_refuse_duplicate_keys)
        except RecursionError:
            raise Invalid(errors={"json": [TOO_DEEP]})
        except DuplicateKey as exc:
            raise Invalid(errors={"json": [f"Duplicate key {exc.key!r}: send each field once."]})
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # not JSON at all: 400, as webargs answers
            raise AppError("Invalid JSON body.", errors={"json": [f"Invalid JSON body: {exc}."]})
        except ValueError:  # JSON, but a number too long to convert (Python's 4300-digit guard)
            raise Invalid(errors={"json": ["A number in the body is too long."]})


class DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    """An object that names a field twice is ambiguous (which `role` did the client mean?): refuse it."""
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(key)
        seen[key] = value
    return seen


def _upload_problem(req) -> dict | None:
    """A multipart upload holds the file parts its schema names, once each: no text part (which the schema of
    the files would never see, so it would be silently dropped), no part twice (which one was meant?)."""
    problems = {_part_name(name): ["Not a file part: only the file parts documented here are taken."]
                for name in req.form}
    problems.update({_part_name(name): ["Send this file once."] for name in req.files
                     if len(req.files.getlist(name)) > 1})
    return problems or None


def _part_name(name) -> str:
    return name if isinstance(name, str) and name else "(a part without a name)"


NUL_MESSAGE = "Must not contain the NUL character (U+0000)."
SURROGATE_MESSAGE = "Must be valid Unicode text (no lone surrogates)."
TOO_DEEP = "Nested too deeply."
MAX_DEPTH = 16  # our bodies nest two or three levels


def _text_problem(value: str) -> str | None:
    if "\x00" in value:
        return NUL_MESSAGE
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_MESSAGE
    return None


def _input_problem(location_data) -> dict | None:
    """Field -> [message] for the first bad value under each top-level field (iterative: no recursion to exhaust)."""
    if not isinstance(location_data, Mapping):
        top = [("_schema", location_data)]
    else:
        top = [(str(key), (key, location_data.get(key))) for key in location_data]
    problems = {}
    for name, value in top:
        stack = [(value, 0)]
        while stack and name not in problems:
            item, depth = stack.pop()
            if depth > MAX_DEPTH:
                problems[name] = [TOO_DEEP]
            elif isinstance(item, str):
                if message := _text_problem(item):
                    problems[name] = [message]
            elif isinstance(item, Mapping):
                stack.extend((part, depth + 1) for pair in item.items() for part in pair)
            elif isinstance(item, (list, tuple)):
                stack.extend((part, depth + 1) for part in item)
    return problems or None


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest Blueprint where If-Match is optional (react-admin never sends it).

    When a client sends If-Match, the service compares it with the row's
    version (`check_if_match`), so the comparison happens on the row it changes.
    """

    ARGUMENTS_PARSER = StrictParser()
    # Actions on a resource (POST .../restore) are writes too: they honour If-Match like PATCH and DELETE.
    METHODS_NEEDING_CHECK_ETAG = ["PUT", "PATCH", "DELETE", "POST"]

    def arguments(self, schema, *args, **kwargs):
        """As flask-smorest's, with one schema instance per route (webargs would build one per request)."""
        return super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)

    def _check_precondition(self):
        return None

    def _verify_check_etag(self):
        return None

    def _check_not_modified(self, etag):
        """304 Not Modified, carrying the ETag it matched (flask-smorest's has none)."""
        # If-None-Match compares weakly (RFC 9110 13.1.2): W/"x" matches "x".
        if request.method in self.METHODS_CHECKING_NOT_MODIFIED and request.if_none_match.contains_weak(etag):
            response = current_app.response_class(status=304)
            response.set_etag(etag)
            raise NotModified(response=response)

    def _prepare_etag_doc(self, doc, doc_info, **kwargs):
        """Document If-Match as what it is here: optional, so no 428 (flask-smorest marks it required)."""
        doc = super()._prepare_etag_doc(doc, doc_info, **kwargs)
        parameters = doc.get("parameters", [])
        if "IF_MATCH" in parameters:
            parameters[parameters.index("IF_MATCH")] = OPTIONAL_IF_MATCH
            doc["responses"].pop(428, None)
        return doc

    @staticmethod
    def _make_doc_response_schema(schema):
        """A schema with an `openapi` attribute is documented by it: a map keyed by name has no fields to declare."""
        return getattr(schema, "openapi", schema)

    def error(self, code: int, description: str | None = None):
        """Document an error response of this operation, in our JSON error shape."""
        return self.alt_response(code, schema=ErrorSchema, description=description or HTTPStatus(code).phrase)

    def set_entity_etag(self, entity) -> None:
        """ETag of a versioned row (and 304 when If-None-Match has it)."""
        self.set_etag(etag_data(entity))


def etag_data(entity) -> dict:
    """What an ETag covers: the row's version, and what changes without one (`etag_extra`: a user's sign-in
    time, an invitation's expiry)."""
    return {"id": str(entity.id), "version": entity.version, **getattr(entity, "etag_extra", {})}


def etag_of(entity) -> str:
    """The ETag of a versioned row: changes whenever the row does."""
    return flask_smorest.Blueprint._generate_etag(etag_data(entity))


def check_if_match(if_match, entity) -> None:
    """Refuse a write when the client sent If-Match and it is stale (412)."""
    if if_match and not if_match.star_tag and etag_of(entity) not in if_match:
        raise PreconditionFailed()


OPTIONAL_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": "The ETag you last read; when sent and stale, the write is refused with 412.",
    "schema": {"type": "string"},
}

ERROR_EXAMPLE = error_body(422, "Invalid input: see errors.", {"email": ["Not a valid email address."]})


def document_common_errors(api) -> None:
    """Every operation that needs a token documents its 401; every one may answer 500.

    The paths are already resolved here, so the responses must be written as
    `$ref` objects (get_ref also registers flask-smorest's lazy components); a bare
    name such as "UNAUTHORIZED" would make the document invalid OpenAPI.
    """
    unauthorized = api.spec.components.get_ref("response", "UNAUTHORIZED")
    server_error = api.spec.components.get_ref("response", "INTERNAL_SERVER_ERROR")
    for operations in api.spec._paths.values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if operation.get("security") != []:
                operation["responses"].setdefault("401", dict(unauthorized))
            operation["responses"].setdefault("500", dict(server_error))
