"""Conventions every endpoint keeps: CORS (C01), JSON errors, request ids, access log, timestamps, probes."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from admin_api.core.requestlog import JsonFormatter
from admin_api.extensions import db
from admin_api.tenants.models import Tenant
from tests.conftest import PASSWORD, bearer

CONSOLE = "http://localhost:5173"  # in the default CORS_ORIGINS
EXPOSED = {"X-Total-Count", "X-Total-Count-Estimated", "X-Pagination", "ETag", "Content-Disposition", "X-Request-ID"}
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|\+00:00)$")


def assert_json_error(response, code: int) -> dict:
    """The one error shape: JSON {code, status, message, errors?}, never HTML."""
    assert response.status_code == code
    assert response.mimetype == "application/json", response.get_data(as_text=True)[:200]
    body = response.get_json()
    assert body["code"] == code
    assert isinstance(body["status"], str) and body["status"]
    assert isinstance(body["message"], str) and body["message"]
    assert "errors" not in body or isinstance(body["errors"], dict)
    assert "<html" not in response.get_data(as_text=True).lower()
    return body


# --- C01 CORS ------------------------------------------------------------------

def test_cors_grants_the_console_and_exposes_list_headers(std, client):
    response = client.get("/api/v1/users", headers={**std["h"]["root"], "Origin": CONSOLE})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == CONSOLE
    exposed = {h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {h.lower() for h in EXPOSED} <= exposed
    assert response.headers["X-Total-Count"] == "5"  # what the console reads through that grant


def test_cors_preflight_for_patch_with_if_match(client, std):
    user_id = std["people"]["amy"].id
    response = client.options(f"/api/v1/users/{user_id}", headers={
        "Origin": CONSOLE,
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization, content-type, if-match",
    })
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == CONSOLE
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert "PATCH" in methods
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "if-match"} <= allowed


def test_cors_grant_also_on_errors_so_the_console_sees_401(client):
    response = client.get("/api/v1/users", headers={"Origin": CONSOLE})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == CONSOLE


@pytest.mark.parametrize("origin", ["https://evil.test", "http://localhost:5174", "null"])
def test_cors_refuses_unconfigured_origins(std, client, origin):
    response = client.get("/api/v1/users", headers={**std["h"]["root"], "Origin": origin})
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = client.options(f"/api/v1/users/{std['people']['amy'].id}", headers={
        "Origin": origin, "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization",
    })
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Methods" not in preflight.headers


def test_cors_origins_come_from_config(make_app, std):
    client = make_app(CORS_ORIGINS=["https://console.example.test"]).test_client()
    granted = client.get("/api/v1/users", headers={**std["h"]["root"], "Origin": "https://console.example.test"})
    assert granted.headers["Access-Control-Allow-Origin"] == "https://console.example.test"
    refused = client.get("/api/v1/users", headers={**std["h"]["root"], "Origin": CONSOLE})
    assert "Access-Control-Allow-Origin" not in refused.headers


# --- JSON errors for every failure -------------------------------------------------

@pytest.mark.parametrize("path", ["/nope", "/api/v1/nope", "/api/v1/users/not-a-uuid/extra",
                                  "/api/docs/assets/nope.js"])
def test_unknown_route_is_json_404(client, path):
    assert_json_error(client.get(path), 404)


@pytest.mark.parametrize("method, path, allowed", [
    ("put", "/api/v1/users", {"GET", "POST"}),
    ("delete", "/api/v1/audit-events", {"GET"}),
    ("post", "/healthz", {"GET"}),
])
def test_wrong_method_is_json_405_with_allow(client, method, path, allowed):
    response = getattr(client, method)(path)
    assert_json_error(response, 405)
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_oversize_body_is_json_413(client, app):
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = client.post("/api/v1/auth/login", data=b"x" * (limit + 1), content_type="application/json")
    assert_json_error(response, 413)


def test_validation_failure_is_json_422_naming_the_fields(std, client):
    response = client.post("/api/v1/tenants", headers=std["h"]["root"],
                           json={"name": "", "slug": "Not A Slug", "id": str(uuid.uuid4())})
    body = assert_json_error(response, 422)
    assert set(body["errors"]) == {"name", "slug", "id"}
    assert all(isinstance(messages, list) and messages for messages in body["errors"].values())


def test_malformed_json_is_a_json_error_with_an_errors_mapping(std, client):
    response = client.post("/api/v1/tenants", headers=std["h"]["root"], data=b'{"name": ',
                           content_type="application/json")
    body = assert_json_error(response, 400)
    assert isinstance(body["errors"], dict) and body["errors"]


@pytest.mark.parametrize("method, path, body, field", [
    ("post", "/api/v1/tenants", {"name": "A\x00B", "slug": "nul-slug"}, "name"),
    ("post", "/api/v1/users", {"email": "nul@example.test", "display_name": "N\x00", "role": "platform_admin"},
     "display_name"),
    ("get", "/api/v1/users?q=a%00b", None, "q"),
    ("get", "/api/v1/audit-events?action=x%00", None, "action"),
    ("post", "/api/v1/auth/login", {"email": "root@example.test", "password": "x", "tenant": "a\x00"}, "tenant"),
])
def test_nul_character_is_a_422_not_a_500(std, client, app, method, path, body, field):
    """PostgreSQL cannot store U+0000: such input is refused up front, on every database."""
    kwargs = {"headers": std["h"]["root"]}
    if body is not None:
        kwargs["json"] = body
    response = getattr(client, method)(path, **kwargs)
    assert field in assert_json_error(response, 422)["errors"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Tenant)) == 2  # nothing stored


def test_unexpected_error_is_json_500_with_request_id_and_nothing_stored(world, make_app):
    app = make_app()

    @app.get("/api/v1/boom")
    def boom():
        db.session.add(Tenant(name="Half-done", slug="half-done", status="active"))
        db.session.flush()
        raise RuntimeError("secret-detail: password=hunter2 at /srv/admin_api/x.py")

    client = app.test_client()
    response = client.get("/api/v1/boom", headers={"X-Request-ID": "req-500-check"})
    body = assert_json_error(response, 500)
    assert "req-500-check" in body["message"]
    assert response.headers["X-Request-ID"] == "req-500-check"
    text = response.get_data(as_text=True)
    for leak in ("secret-detail", "hunter2", "RuntimeError", "Traceback", "x.py"):
        assert leak not in text
    # The failed request left nothing behind and the next one works.
    with app.app_context():
        assert db.session.scalar(select(Tenant).where(Tenant.slug == "half-done")) is None
    assert client.get("/readyz").status_code == 200


# --- request ids --------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [("get", "/healthz"), ("get", "/api/v1/users"), ("get", "/nope"),
                                          ("put", "/api/v1/users"), ("get", "/api/openapi.json"),
                                          ("options", "/api/v1/users")])
def test_every_response_has_a_request_id(client, method, path):
    first = getattr(client, method)(path).headers.get("X-Request-ID")
    second = getattr(client, method)(path).headers.get("X-Request-ID")
    assert first and second and first != second


@pytest.mark.parametrize("sent", ["abc-123", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "trace.1:span_2"])
def test_sane_request_id_is_echoed(client, sent):
    assert client.get("/healthz", headers={"X-Request-ID": sent}).headers["X-Request-ID"] == sent


@pytest.mark.parametrize("sent", ["x" * 300, "has spaces", "<script>", "ünïcode", "a;b", ""])
def test_insane_request_id_is_replaced(client, sent):
    got = client.get("/healthz", headers={"X-Request-ID": sent}).headers["X-Request-ID"]
    assert got and got != sent
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", got)


def test_request_id_with_a_newline_is_replaced(client):
    # The test client refuses to send a newline in a header; a raw WSGI environ can carry one.
    response = client.get("/healthz", environ_overrides={"HTTP_X_REQUEST_ID": "abc\r\nSet-Cookie: x=1"})
    got = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", got)
    assert "Set-Cookie" not in response.headers


# --- access log -------------------------------------------------------------------

def access_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "admin_api.access"]


def test_one_json_access_line_per_request(std, app_log):
    app, caplog = app_log
    client = app.test_client()
    caplog.clear()
    alice = std["people"]["alice"]
    client.get("/api/v1/users?status=active", headers={**std["h"]["alice"], "X-Request-ID": "log-check-1"})
    client.get("/nope", headers={"X-Request-ID": "log-check-2"})
    records = access_records(caplog)
    assert len(records) == 2
    lines = [json.loads(JsonFormatter().format(r)) for r in records]
    first, second = lines
    assert first["method"] == "GET" and first["path"] == "/api/v1/users" and first["status"] == 200
    assert "status=active" not in json.dumps(first)  # never the query string
    assert first["request_id"] == "log-check-1"
    assert first["user_id"] == str(alice.id) and first["tenant_id"] == str(std["a"].id)
    assert isinstance(first["duration_ms"], (int, float)) and first["duration_ms"] >= 0
    assert second["status"] == 404 and second["user_id"] is None and second["tenant_id"] is None
    assert RFC3339_UTC.match(first["ts"]), first["ts"]
    assert abs(datetime.fromisoformat(first["ts"].replace("Z", "+00:00")) - datetime.now(UTC)) < timedelta(minutes=5)


def test_login_is_logged_without_password_or_tokens(world, app_log):
    app, caplog = app_log
    world.user("root@example.test", "platform_admin")
    client = app.test_client()
    caplog.clear()
    response = client.post("/api/v1/auth/login", json={"email": "root@example.test", "password": PASSWORD})
    assert response.status_code == 200
    failed = client.post("/api/v1/auth/login", json={"email": "root@example.test", "password": "wrong-" + PASSWORD})
    assert failed.status_code == 401
    me = client.get("/api/v1/auth/me", headers=bearer(response.json["access_token"]))
    assert me.status_code == 200
    assert len(access_records(caplog)) == 3
    everything = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    for secret in (PASSWORD, response.json["access_token"], response.json["refresh_token"]):
        assert secret not in everything
    # The signature part alone is enough to forge nothing, but must not leak either.
    assert response.json["access_token"].split(".")[2] not in everything


def test_access_log_is_json_lines_on_stderr(tmp_path):
    """What an operator sees: the process writes one JSON object per request to stderr."""
    script = (
        "from admin_api import create_app\n"
        "app = create_app({'APP_ENV': 'testing', 'LOG_LEVEL': 'INFO', 'SECRET_KEY': 's' * 40,"
        f" 'JWT_SECRET_KEY': 'j' * 40, 'DATABASE_URL': 'sqlite:///{tmp_path / 'x.db'}',"
        f" 'UPLOAD_FOLDER': '{tmp_path / 'up'}'}})\n"
        "c = app.test_client()\n"
        "c.get('/healthz', headers={'X-Request-ID': 'stderr-1'})\n"
        "c.get('/nope?secret=1', headers={'X-Request-ID': 'stderr-2'})\n"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "admin_api.access"]
    assert [(a["path"], a["status"], a["request_id"]) for a in access] == [
        ("/healthz", 200, "stderr-1"), ("/nope", 404, "stderr-2"),
    ]
    assert "secret=1" not in done.stderr
    assert "stderr-1" not in done.stdout


# --- timestamps ---------------------------------------------------------------------

def _assert_utc_timestamp(value: str) -> None:
    assert RFC3339_UTC.match(value), value
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert moment.utcoffset() == timedelta(0)
    assert abs(moment - datetime.now(UTC)) < timedelta(minutes=10), value  # UTC, not local time labelled UTC


@pytest.mark.real_sign_ins  # reads last_login_at
def test_timestamps_in_bodies_are_rfc3339_utc(std, client):
    h = std["h"]["root"]
    users = client.get("/api/v1/users", headers=h).json
    root = next(u for u in users if u["email"] == "root@example.test")
    for field in ("created_at", "updated_at", "last_login_at"):
        _assert_utc_timestamp(root[field])
    tenant = client.get(f"/api/v1/tenants/{std['a'].id}", headers=h).json
    _assert_utc_timestamp(tenant["created_at"])
    _assert_utc_timestamp(tenant["updated_at"])
    events = client.get("/api/v1/audit-events", headers=h).json
    assert events
    for event in events:
        _assert_utc_timestamp(event["occurred_at"])
    disabled = client.delete(f"/api/v1/users/{std['people']['amy'].id}", headers=h)
    assert disabled.status_code == 204
    _assert_utc_timestamp(client.get(f"/api/v1/users/{std['people']['amy'].id}", headers=h).json["disabled_at"])


# --- probes ------------------------------------------------------------------------

def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["status"] == "ok"


def test_readyz_at_head(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "migrations": "head"}


def test_readyz_503_on_an_unmigrated_database(make_app, tmp_path):
    client = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}").test_client()
    assert_json_error(client.get("/readyz"), 503)
    assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_readyz_503_when_migrations_are_behind(make_app, tmp_path):
    from sqlalchemy import text

    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'old.db'}")
    with app.app_context():
        db.session.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        db.session.execute(text("INSERT INTO alembic_version VALUES ('0000-older')"))
        db.session.commit()
    body = assert_json_error(app.test_client().get("/readyz"), 503)
    assert "flask db upgrade" in body["message"]


# --- hostile input: a clear 4xx, never a 500, nothing stored ---------------------------------

def _counts(app) -> tuple[int, int]:
    from admin_api.audit.models import AuditEvent
    from admin_api.users.models import User

    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(m)) for m in (Tenant, User, AuditEvent))


SURROGATE_BODIES = [
    ("/api/v1/auth/login", '{"email": "nobody@example.test", "password": "\\ud800abcdefgh"}', "password"),
    ("/api/v1/auth/login", '{"email": "a@example.test", "password": "x", "tenant": "\\udfff"}', "tenant"),
    ("/api/v1/tenants", '{"name": "A\\ud800", "slug": "surrogate"}', "name"),
    ("/api/v1/users", '{"email": "s@example.test", "display_name": "\\udc00", "role": "platform_admin"}', "display_name"),
]


@pytest.mark.parametrize("path, raw, field", SURROGATE_BODIES)
def test_lone_surrogates_are_422_not_500(std, client, app, path, raw, field):
    before = _counts(app)
    response = client.post(path, headers=std["h"]["root"], data=raw, content_type="application/json")
    body = assert_json_error(response, 422)
    assert field in body["errors"]
    assert _counts(app) == before


@pytest.mark.parametrize("depth", [20, 400, 5000])
def test_deeply_nested_json_is_422_not_500(client, app, depth):
    raw = '{"email": "a@b.test", "password": "x", "tenant": ' + "[" * depth + "]" * depth + "}"
    before = _counts(app)
    body = assert_json_error(client.post("/api/v1/auth/login", data=raw, content_type="application/json"), 422)
    assert body["errors"]
    assert _counts(app) == before


@pytest.mark.parametrize("query", [{"since": "9999-12-31T23:59:59-00:01"}, {"until": "0001-01-01T00:00:00+00:01"},
                                   {"since": "2026-12-03T18:00:00"}])  # the last: no offset
def test_timestamps_off_the_calendar_are_422(std, client, query):
    body = assert_json_error(client.get("/api/v1/audit-events", headers=std["h"]["alice"], query_string=query), 422)
    assert set(body["errors"]) == set(query)


@pytest.mark.parametrize("slug", ["acme\n", "acme\r\n", " acme", "platform"])
def test_slugs_must_match_whole_and_platform_is_reserved(std, client, app, slug):
    before = _counts(app)
    response = client.post("/api/v1/tenants", headers=std["h"]["root"], json={"name": "Acme", "slug": slug})
    assert "slug" in assert_json_error(response, 422)["errors"]
    assert _counts(app) == before


@pytest.mark.parametrize("field, value", [
    ("display_name", "   "), ("display_name", "\n\t"), ("display_name", "\u202eevil"), ("display_name", "a\x1b[31mred"),
    ("display_name", "zero\u200bwidth"), ("email", "a@exa\u200bmple.test"), ("email", "\u202ea@example.test"),
])
def test_invisible_characters_and_blank_names_are_refused(std, client, app, field, value):
    body = {"email": "new@example.test", "display_name": "New", "role": "member", field: value}
    before = _counts(app)
    response = client.post("/api/v1/users", headers=std["h"]["alice"], json=body)
    assert field in assert_json_error(response, 422)["errors"]
    assert _counts(app) == before


def test_names_are_trimmed_and_joiners_allowed(std, client):
    response = client.post("/api/v1/users", headers=std["h"]["alice"],
                           json={"email": "  Nima@Example.test ", "display_name": "  نیما\u200cزاده  ", "role": "member"})
    assert response.status_code == 201
    assert (response.json["email"], response.json["display_name"]) == ("nima@example.test", "نیما\u200cزاده")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_415(std, client, app, content_type):
    before = _counts(app)
    headers = {**std["h"]["root"], **({"Content-Type": content_type} if content_type else {})}
    response = client.post("/api/v1/tenants", headers=headers, data=b'{"name": "Acme", "slug": "acme"}')
    assert_json_error(response, 415)
    assert _counts(app) == before


def test_a_chunked_body_is_411_and_stores_nothing(std, client, app):
    before = _counts(app)
    response = client.post("/api/v1/tenants", headers={**std["h"]["root"], "Transfer-Encoding": "chunked",
                                                       "Content-Type": "application/json"},
                           input_stream=__import__("io").BytesIO(b'{"name": "x", "slug": "chunked"}' + b" " * 100))
    assert_json_error(response, 411)
    assert _counts(app) == before


def test_not_modified_carries_the_etag(std, client):
    path = f"/api/v1/tenants/{std['a'].id}"
    first = client.get(path, headers=std["h"]["root"])
    again = client.get(path, headers={**std["h"]["root"], "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.headers["ETag"] == first.headers["ETag"]


# --- found by a hostile review ------------------------------------------------------------------

def test_a_number_too_long_to_convert_is_422_not_500(client, app):
    raw = '{"email": "x@example.test", "password": 1' + "0" * 4400 + "}"
    before = _counts(app)
    body = assert_json_error(client.post("/api/v1/auth/login", data=raw, content_type="application/json"), 422)
    assert "json" in body["errors"]
    assert _counts(app) == before


def test_a_field_sent_twice_is_refused(std, client, app):
    raw = '{"email": "dup@example.test", "display_name": "Dup", "role": "member", "role": "tenant_admin"}'
    before = _counts(app)
    body = assert_json_error(client.post("/api/v1/users", headers=std["h"]["alice"], data=raw,
                                         content_type="application/json"), 422)
    assert "role" in body["errors"]["json"][0]
    assert _counts(app) == before


def test_the_bearer_scheme_is_case_insensitive(std, client):
    token = std["h"]["root"]["Authorization"].split()[1]
    for scheme in ("bearer", "BEARER"):
        assert client.get("/api/v1/auth/me", headers={"Authorization": f"{scheme} {token}"}).status_code == 200


def test_if_none_match_compares_weakly(std, client):
    path = f"/api/v1/tenants/{std['a'].id}"
    etag = client.get(path, headers=std["h"]["root"]).headers["ETag"]
    again = client.get(path, headers={**std["h"]["root"], "If-None-Match": f"W/{etag}"})
    assert again.status_code == 304


def test_a_write_that_loses_the_race_after_if_match_gets_412(std, client, app, monkeypatch):
    """The ORM's version check fails after our own If-Match check passed: the client asked for 412, not 409."""
    from sqlalchemy.orm.exc import StaleDataError

    from admin_api.users import service

    path = f"/api/v1/users/{std['people']['amy'].id}"
    etag = client.get(path, headers=std["h"]["alice"]).headers["ETag"]

    def lose_the_race(*args, **kwargs):
        raise StaleDataError("UPDATE statement on table 'users' expected to update 1 row(s); 0 were matched.")

    monkeypatch.setattr(service.audit, "record", lose_the_race)
    response = client.patch(path, headers={**std["h"]["alice"], "If-Match": etag}, json={"display_name": "Late"})
    assert_json_error(response, 412)
    without = client.patch(path, headers=std["h"]["alice"], json={"display_name": "Late"})
    assert_json_error(without, 409)


def test_creates_document_location_and_etag(client):
    spec = client.get("/api/openapi.json").json
    for path in ("/api/v1/users", "/api/v1/tenants"):
        headers = spec["paths"][path]["post"]["responses"]["201"]["headers"]
        assert {"Location", "ETag"} <= set(headers)


@pytest.mark.slow
def test_the_servers_own_refusals_are_json_too(tmp_path):
    """gunicorn answers an oversized request line or header block, or a malformed request, before the app runs."""
    import socket
    import time

    root = Path(__file__).resolve().parent.parent
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "1", "APP_ENV": "development",
           "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
                              cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def exchange(raw: bytes) -> tuple[str, dict[str, str], dict]:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(raw)
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        status, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
        return status, headers, json.loads(body)

    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        cases = {
            b"GET /api/v1/users?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n": 414,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % n for n in range(150)) + b"\r\n": 431,
            b"NOT HTTP AT ALL\r\n\r\n": 400,
        }
        for raw, code in cases.items():
            status, headers, body = exchange(raw)
            assert status.startswith(f"HTTP/1.1 {code} ")
            assert headers["content-type"] == "application/json"
            assert body["code"] == code and body["message"] and "<" not in json.dumps(body)
    finally:
        server.terminate()
        server.wait(timeout=30)


# --- found by a hostile review -----------------------------------------------------------------

def test_a_query_argument_given_twice_is_refused_not_guessed(std, client):
    response = client.get("/api/v1/users?page=1&page=2", headers=std["h"]["root"])
    assert response.status_code == 422 and response.json["errors"] == {"page": ["Give this argument once."]}
    assert client.get("/api/v1/users?page=1&page_size=2", headers=std["h"]["root"]).status_code == 200

