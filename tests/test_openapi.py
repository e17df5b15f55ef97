"""The OpenAPI document: valid, complete, honest (schemathesis against the app), and Swagger UI self-hosted."""
from __future__ import annotations

import re
import uuid
from html.parser import HTMLParser

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from admin_api.audit.models import AuditEvent
from admin_api.core.security import issue_tokens
from admin_api.extensions import db
from admin_api.users.models import User
from tests.conftest import bearer

METHODS = {"get", "put", "post", "patch", "delete", "head", "options"}


@pytest.fixture
def spec(client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.is_json
    return response.json


def operations(spec: dict):
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation, shared + operation.get("parameters", [])


def resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        section, name = node["$ref"].split("/")[-2:]
        node = spec["components"][section][name]
    return node


def test_document_is_valid_openapi(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.")


def test_bearer_security_scheme(spec):
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    assert {"bearerAuth": []} in spec["security"]
    # What needs no token says so (Swagger UI must not send a stale one there, clients must not need one).
    for path in ("/healthz", "/readyz", "/api/v1/auth/login"):
        method = "post" if path.endswith("login") else "get"
        assert spec["paths"][path][method]["security"] == []


def test_every_operation_is_documented(spec):
    problems = []
    for path, method, operation, parameters in operations(spec):
        label = f"{method.upper()} {path}"
        responses = operation["responses"]
        if not operation.get("summary"):
            problems.append(f"{label}: no summary")
        successes = [code for code in responses if code.startswith("2")]
        if not successes:
            problems.append(f"{label}: no 2xx response")
        for code in successes:
            response = resolve(spec, responses[code])
            content = response.get("content", {})
            binary = [media for media, body in content.items()  # photo downloads: an image, documented as binary
                      if media.startswith("image/") and body.get("schema", {}).get("format") == "binary"]
            if code not in {"204", "304"} and "schema" not in content.get("application/json", {}) and not binary:
                problems.append(f"{label}: {code} has no JSON schema")
        if operation.get("security", spec["security"]) != [] and "401" not in responses:
            problems.append(f"{label}: needs a token but does not document 401")
        if any(p.get("in") == "path" for p in parameters) and "404" not in responses:
            problems.append(f"{label}: has a path id but does not document 404")
        takes_input = "requestBody" in operation or any(p.get("in") == "query" for p in parameters)
        if takes_input and "422" not in responses:
            problems.append(f"{label}: takes input but does not document 422")
        if "201" in responses and "409" not in responses:
            problems.append(f"{label}: creates but does not document 409 (duplicates)")
        if "500" not in responses:
            problems.append(f"{label}: does not document 500")
    assert problems == []


def test_error_responses_are_documented_with_the_error_shape(spec):
    for path, method, operation, _ in operations(spec):
        for code, response in operation["responses"].items():
            if code == "default" or int(code) < 400:
                continue
            schema = resolve(spec, response)["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, f"{method.upper()} {path} {code}"
    error = spec["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "status", "message"}
    assert "existing_user_id" in error["properties"]  # the 409 on a duplicate email names the user


def test_if_match_is_documented_as_optional(spec):
    """react-admin never sends If-Match: the document must not require it (nor promise a 428)."""
    checked = 0
    for path, method, operation, parameters in operations(spec):
        for parameter in parameters:
            parameter = resolve(spec, parameter)
            if parameter.get("in") == "header" and parameter["name"].lower() == "if-match":
                checked += 1
                assert parameter.get("required", False) is False, f"{method.upper()} {path}"
                assert "412" in operation["responses"] and "428" not in operation["responses"]
    assert checked >= 3  # PATCH/DELETE users, PATCH tenants


def test_real_error_bodies_match_the_document(std, client, app):
    """Deterministic counterpart of the fuzzing below: each kind of error answer validates against its operation."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    h = std["h"]
    amy = std["people"]["amy"]
    answers = [
        ("/api/v1/users", "GET", client.get("/api/v1/users"), 401),
        ("/api/v1/users/{user_id}", "GET", client.get(f"/api/v1/users/{uuid.uuid4()}", headers=h["root"]), 404),
        ("/api/v1/users/{user_id}", "GET", client.get(f"/api/v1/users/{amy.id}", headers=h["bob"]), 404),
        ("/api/v1/users", "POST", client.post("/api/v1/users", headers=h["alice"], json={
            "email": "Amy@Example.test", "display_name": "Amy 2", "role": "member"}), 409),
        ("/api/v1/tenants", "POST", client.post("/api/v1/tenants", headers=h["root"], json={"slug": "X"}), 422),
        ("/api/v1/users/{user_id}", "PATCH", client.patch(f"/api/v1/users/{amy.id}", headers={
            **h["alice"], "If-Match": '"stale"'}, json={"display_name": "New"}), 412),
        ("/api/v1/tenants", "POST", client.post("/api/v1/tenants", headers=h["alice"], json={
            "name": "T", "slug": "tt"}), 403),
        ("/api/v1/users/{user_id}/restore", "POST", client.post(f"/api/v1/users/{amy.id}/restore", headers=h["alice"]), 409),
        ("/api/v1/users/{user_id}/reset-password", "POST", client.post(
            f"/api/v1/users/{amy.id}/reset-password", headers=h["alice"], json={}), 200),
        ("/api/v1/auth/password-reset", "POST", client.post("/api/v1/auth/password-reset", json={
            "token": "not-a-token", "new_password": "a long enough passphrase"}), 410),
        ("/api/v1/auth/change-password", "POST", client.post("/api/v1/auth/change-password", headers=h["bea"], json={
            "current_password": "wrong password", "new_password": "a long enough passphrase"}), 422),
        ("/api/v1/tenants/{tenant_id}", "DELETE", client.delete(f"/api/v1/tenants/{std['b'].id}", headers=h["bob"]), 403),
        ("/api/v1/tenants/{tenant_id}/restore", "POST", client.post(f"/api/v1/tenants/{std['b'].id}/restore",
                                                                    headers=h["root"]), 409),
        *invitation_answers(client, h),
        ("/api/v1/feature-flags/evaluate", "GET", client.get("/api/v1/feature-flags/evaluate", headers=h["root"]), 422),
        ("/api/v1/feature-flags/{key}/overrides/{tenant_id}", "PUT", client.put(
            f"/api/v1/feature-flags/nope/overrides/{uuid.uuid4()}", headers=h["alice"], json={"enabled": True}), 404),
    ]
    for path, method, response, status in answers:
        assert response.status_code == status, (method, path, response.json)
        schema[path][method].validate_response(response)  # raises when undocumented or off-schema


def invitation_answers(client, h) -> list[tuple]:
    """Invitation answers of each kind, in order: created, refused, resent, accepted, then gone."""
    invitations, one, accept = ("/api/v1/invitations", "/api/v1/invitations/{invitation_id}",
                                "/api/v1/invitations/{invitation_id}/accept")
    body = {"email": "carl@example.test", "role": "member"}
    created = client.post(invitations, headers=h["alice"], json=body)
    url = f"{invitations}/{created.json['id']}"
    resent = client.post(f"{url}/resend", headers=h["alice"])
    accepted = {"token": resent.json["token"], "password": "a long enough passphrase", "display_name": "Carl"}
    return [
        (invitations, "POST", created, 201),
        (invitations, "POST", client.post(invitations, headers=h["alice"], json=body), 409),
        (invitations, "POST", client.post(invitations, headers=h["root"], json=body), 422),
        (invitations, "GET", client.get(invitations, headers=h["bea"]), 403),
        (one + "/resend", "POST", resent, 200),
        (accept, "POST", client.post(f"{url}/accept", json={**accepted, "token": "wrong"}), 404),
        (accept, "POST", client.post(f"{url}/accept", json=accepted), 201),
        (accept, "POST", client.post(f"{url}/accept", json=accepted), 409),
        (one, "DELETE", client.delete(url, headers=h["alice"]), 409),
        (one, "GET", client.get(url, headers=h["bob"]), 404),
    ]


# --- Swagger UI ------------------------------------------------------------------------

class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.urls.append(attrs["src"])


def test_swagger_ui_is_served_with_its_assets_from_this_server(client):
    response = client.get("/api/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    parser = _Assets()
    parser.feed(html)
    assert any(url.endswith(".js") for url in parser.urls) and any(url.endswith(".css") for url in parser.urls)
    for url in parser.urls:
        assert not re.match(r"^(https?:)?//", url), f"external asset {url}"
        with client.get(url) as asset:  # a file response: close it
            assert asset.status_code == 200, url
            assert len(asset.get_data()) > 1000, url
            expected = "text/css" if url.endswith(".css") else "javascript"
            assert expected in asset.mimetype, (url, asset.mimetype)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    # The page loads this server's document, and does not ask validator.swagger.io about it.
    assert 'url: "/api/openapi.json"' in html
    assert '"validatorUrl": null' in html


# --- schemathesis -----------------------------------------------------------------------

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
FUZZ = settings(
    max_examples=50,  # per operation and mode, ~45 operations: the suite stays within its time budget
    derandomize=True, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_schemathesis_finds_no_5xx_and_no_undocumented_answer(std, app, mode):
    """Every operation of our own document, fuzzed as a platform admin: no 5xx, every answer as documented.

    Besides random ids, path ids also take known ones so that updates and deletes reach real rows.
    /auth/revoke and /auth/refresh get a fresh token of their own per example (they consume it).
    """
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    root_id = std["people"]["root"].id
    root_headers = std["h"]["root"]
    invitation = std["world"].client.post("/api/v1/invitations", headers=std["h"]["alice"], json={
        "email": "carl@example.test", "role": "member"})
    with app.app_context():
        event_id = db.session.scalar(select(AuditEvent.id).limit(1))
    flag = app.test_client().post("/api/v1/feature-flags", headers=root_headers, json={
        "key": "beta.search", "tenant_overrides": {str(std["a"].id): True}})
    assert flag.status_code == 201
    known = {"user_id": [std["people"]["alice"].id, std["people"]["amy"].id], "tenant_id": [std["a"].id],
             "event_id": [event_id], "invitation_id": [invitation.json["id"]],
             "key": [flag.json["key"]]}

    def fresh_tokens() -> dict:
        with app.app_context():
            return issue_tokens(db.session.get(User, root_id))

    def headers_for(path: str) -> dict:
        if path == "/api/v1/auth/revoke":
            return bearer(fresh_tokens()["access_token"])
        if path == "/api/v1/auth/refresh":
            return bearer(fresh_tokens()["refresh_token"])
        return root_headers

    failures: dict[str, str] = {}
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        strategies = [operation.as_strategy(generation_mode=mode)]
        names = [p.name for p in operation.path_parameters]
        for name in names:
            for value in known.get(name, []):
                strategies.append(operation.as_strategy(generation_mode=mode, path_parameters={name: str(value)}))

        @FUZZ
        @given(case=st.one_of(strategies))
        def run(case):
            case.call_and_validate(headers=headers_for(case.operation.path), checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            # Negative mode cannot break an operation that takes no input at all.
            assert mode is GenerationMode.NEGATIVE and not names and not operation.query and not operation.body
            continue
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, report them together
            failures[operation.label] = str(exc)[:3000]
        tested += 1
    assert tested >= 19
    assert failures == {}, "\n\n".join(f"== {label}\n{text}" for label, text in failures.items())
