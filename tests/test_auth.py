"""Sign in, refresh, revoke, me; password reset and change; throttling; uniform failures (C05-C09, C11, C13)."""
import time

import jwt as pyjwt
import pytest

from tests.conftest import PASSWORD, audit_actions, bearer, in_threads, login_status


def test_login_returns_tokens_and_user(world, client):
    world.user("root@example.test", "platform_admin")
    response = client.post("/api/v1/auth/login", json={"email": "Root@Example.TEST", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["user"]["email"] == "root@example.test"
    assert "password_hash" not in body["user"]
    me = client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json["id"] == body["user"]["id"]
    assert me.json["last_login_at"] is not None


def test_token_subject_is_a_string_and_role_is_a_claim(world, client):
    world.user("root@example.test", "platform_admin")
    token = world.login("root@example.test")["access_token"]
    claims = pyjwt.decode(token, options={"verify_signature": False})
    assert isinstance(claims["sub"], str)
    assert claims["role"] == "platform_admin" and claims["tenant_id"] is None


def test_failures_all_look_the_same(world, client, app):
    tenant = world.tenant("tenant-a")
    gone = world.tenant("gone", status="deleted")
    world.user("alice@example.test", "member", tenant)
    world.user("dis@example.test", "member", tenant, status="disabled")
    world.user("ghost@example.test", "member", gone)
    attempts = [
        {"email": "nobody@example.test", "password": PASSWORD},
        {"email": "alice@example.test", "password": "wrong password!!"},
        {"email": "dis@example.test", "password": PASSWORD},
        {"email": "ghost@example.test", "password": PASSWORD},
    ]
    answers = [client.post("/api/v1/auth/login", json=body) for body in attempts]
    assert {r.status_code for r in answers} == {401}
    assert len({r.get_data() for r in answers}) == 1
    assert audit_actions(app).count("auth.login_failed") == 4


def test_unknown_email_costs_one_hash(world, monkeypatch):
    from admin_api.core import security

    calls = []
    original = security.PasswordHasher.verify
    monkeypatch.setattr(security.PasswordHasher, "verify", lambda self, h, p: calls.append(1) or original(self, h, p))
    world.client.post("/api/v1/auth/login", json={"email": "nobody@example.test", "password": "whatever pass"})
    assert calls == [1]


def test_login_bad_body_is_422(client):
    response = client.post("/api/v1/auth/login", json={"email": "not-an-email", "password": "x", "admin": True})
    assert response.status_code == 422
    assert set(response.json["errors"]) == {"email", "admin"}


def test_login_throttled_per_account_with_retry_after(world, client, app):
    app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"] = 3
    world.user("alice@example.test", "platform_admin")
    for _ in range(3):
        assert client.post("/api/v1/auth/login", json={"email": "alice@example.test", "password": "bad password"}).status_code == 401
    blocked = client.post("/api/v1/auth/login", json={"email": "alice@example.test", "password": PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert blocked.json["code"] == 429
    # An unknown account is throttled the same way: no enumeration through 429 either.
    for _ in range(3):
        client.post("/api/v1/auth/login", json={"email": "nobody@example.test", "password": "bad password"})
    assert client.post("/api/v1/auth/login", json={"email": "nobody@example.test", "password": "x"}).status_code == 429


def test_login_throttled_per_address(world, client, app):
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 4
    world.user("alice@example.test", "platform_admin")
    for n in range(4):
        client.post("/api/v1/auth/login", json={"email": f"x{n}@example.test", "password": "bad password"})
    response = client.post("/api/v1/auth/login", json={"email": "alice@example.test", "password": PASSWORD})
    assert response.status_code == 429


def test_window_expiry_lifts_the_throttle(world, client, app):
    app.config.update(LOGIN_MAX_FAILURES_PER_ACCOUNT=2, LOGIN_FAILURE_WINDOW=1)
    world.user("alice@example.test", "platform_admin")
    for _ in range(2):
        client.post("/api/v1/auth/login", json={"email": "alice@example.test", "password": "bad password"})
    assert client.post("/api/v1/auth/login", json={"email": "alice@example.test", "password": PASSWORD}).status_code == 429
    time.sleep(1.2)
    assert client.post("/api/v1/auth/login", json={"email": "alice@example.test", "password": PASSWORD}).status_code == 200


def test_ambiguous_email_needs_the_tenant(world, client):
    a, b = world.tenant("tenant-a"), world.tenant("tenant-b")
    world.user("sam@example.test", "member", a)
    world.user("sam@example.test", "member", b)
    response = client.post("/api/v1/auth/login", json={"email": "sam@example.test", "password": PASSWORD})
    unknown = client.post("/api/v1/auth/login", json={"email": "nobody@example.test", "password": PASSWORD})
    # The same 401 as an unknown email (no enumeration); the message says to name the tenant.
    assert response.status_code == unknown.status_code == 401 and response.json == unknown.json
    assert "tenant" in response.json["message"]
    ok = client.post("/api/v1/auth/login", json={"email": "sam@example.test", "password": PASSWORD, "tenant": "tenant-b"})
    assert ok.status_code == 200 and ok.json["user"]["tenant_id"] == str(b.id)


def test_refresh_rotates_and_refuses_reuse(world, client, app):
    world.user("root@example.test", "platform_admin")
    tokens = world.login("root@example.test")
    first = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert first.status_code == 200
    assert first.json["refresh_token"] != tokens["refresh_token"]
    again = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert again.status_code == 401
    assert client.get("/api/v1/auth/me", headers=bearer(first.json["access_token"])).status_code == 200
    assert "auth.refresh" in audit_actions(app)


def test_refresh_takes_no_body_or_an_empty_one_and_refuses_fields(world, client, app):
    world.user("root@example.test", "platform_admin")
    refresh = world.login("root@example.test")["refresh_token"]
    refused = client.post("/api/v1/auth/refresh", headers=bearer(refresh), json={"refresh_token": refresh})
    assert refused.status_code == 422 and refused.json["errors"] == {"refresh_token": ["Unknown field."]}
    assert audit_actions(app, action="auth.refresh") == []  # and the token was not used up:
    empty = client.post("/api/v1/auth/refresh", headers=bearer(refresh), json={})
    assert empty.status_code == 200
    assert client.post("/api/v1/auth/refresh", headers=bearer(empty.json["refresh_token"])).status_code == 200


def test_access_token_cannot_refresh_and_refresh_token_cannot_call_api(world, client, app):  # C07
    world.user("root@example.test", "platform_admin")
    tokens = world.login("root@example.test")
    before = audit_actions(app)
    assert client.post("/api/v1/auth/refresh", headers=bearer(tokens["access_token"])).status_code == 401
    assert audit_actions(app) == before
    assert client.get("/api/v1/users", headers=bearer(tokens["refresh_token"])).status_code == 401


def test_revoke_kills_one_token_only(world, client, app):  # C08
    world.user("alice@example.test", "platform_admin")
    a1, a2 = world.login("alice@example.test"), world.login("alice@example.test")
    assert client.post("/api/v1/auth/revoke", headers=bearer(a1["access_token"]), json={}).status_code == 204
    assert client.get("/api/v1/users", headers=bearer(a1["access_token"])).status_code == 401
    assert client.get("/api/v1/users", headers=bearer(a2["access_token"])).status_code == 200
    assert "auth.revoke" in audit_actions(app)


def test_revoke_with_refresh_token_in_body(world, client):
    world.user("alice@example.test", "platform_admin")
    tokens = world.login("alice@example.test")
    response = client.post("/api/v1/auth/revoke", headers=bearer(tokens["access_token"]),
                           json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 204
    assert client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code == 401


def test_revoke_refuses_someone_elses_refresh_token(world, client):
    world.user("alice@example.test", "platform_admin")
    world.user("root@example.test", "platform_admin")
    mine, theirs = world.login("alice@example.test"), world.login("root@example.test")
    response = client.post("/api/v1/auth/revoke", headers=bearer(mine["access_token"]),
                           json={"refresh_token": theirs["refresh_token"]})
    assert response.status_code == 422
    assert client.post("/api/v1/auth/refresh", headers=bearer(theirs["refresh_token"])).status_code == 200


def test_revoke_by_refresh_token_as_bearer(world, client):
    world.user("alice@example.test", "platform_admin")
    tokens = world.login("alice@example.test")
    assert client.post("/api/v1/auth/revoke", headers=bearer(tokens["refresh_token"]), json={}).status_code == 204
    assert client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code == 401


@pytest.mark.slow
def test_expired_token_is_401_before_the_body(make_app, world):  # C05
    app = make_app(JWT_ACCESS_TOKEN_EXPIRES=2)
    client = app.test_client()
    world.user("root@example.test", "platform_admin")
    token = client.post("/api/v1/auth/login", json={"email": "root@example.test", "password": PASSWORD}).json["access_token"]
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200  # checked once, then remembered
    time.sleep(3)
    response = client.get("/api/v1/users", headers=bearer(token))
    assert response.status_code == 401 and response.json["message"] == "Token expired."
    bad_body = client.post("/api/v1/users", headers=bearer(token), json={"nonsense": 1})
    assert bad_body.status_code == 401


def test_a_token_one_app_has_checked_is_not_trusted_by_an_app_with_another_key(make_app, world):
    world.user("root@example.test", "platform_admin")
    first = make_app().test_client()
    token = first.post("/api/v1/auth/login", json={"email": "root@example.test", "password": PASSWORD}).json["access_token"]
    assert first.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    other = make_app(JWT_SECRET_KEY="another-signing-key-of-at-least-32-characters").test_client()
    response = other.get("/api/v1/auth/me", headers=bearer(token))
    assert response.status_code == 401 and response.json["message"] == "Invalid token."


@pytest.mark.parametrize("header", [None, "Bearer not-a-jwt", "Bearer ", "Basic abc", "bearer x.y.z"])
def test_missing_or_garbage_token_is_401(client, header):  # C05
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/users", headers=headers)
    assert response.status_code == 401
    assert response.is_json and response.json["code"] == 401


def _forge(claims: dict, key: str, algorithm: str = "HS256", headers: dict | None = None) -> str:
    return pyjwt.encode(claims, key, algorithm=algorithm, headers=headers)


def _claims_of(token):
    return pyjwt.decode(token, options={"verify_signature": False})


def _none_token(claims: dict, alg: str) -> str:
    import base64
    import json

    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims)}."


@pytest.mark.parametrize("forgery", ["none", "None", "NONE", "other-key", "jku", "kid", "x5u", "issuer", "audience"])
def test_forged_tokens_are_refused(world, client, config, forgery):  # C09
    world.user("root@example.test", "platform_admin")
    real = world.login("root@example.test")["access_token"]
    claims = _claims_of(real)
    key = config["JWT_SECRET_KEY"]
    if forgery in {"none", "None", "NONE"}:
        token = _none_token(claims, forgery)
    elif forgery == "other-key":
        token = _forge(claims, "another-key-that-is-long-enough-for-hs256!!")
    elif forgery in {"jku", "x5u"}:
        token = _forge(claims, "another-key-that-is-long-enough-for-hs256!!", headers={forgery: "https://evil.test/keys"})
    elif forgery == "kid":
        token = _forge(claims, "another-key-that-is-long-enough-for-hs256!!", headers={"kid": "../../dev/null"})
    elif forgery == "issuer":
        token = _forge({**claims, "iss": "someone-else"}, key)
    else:
        token = _forge({**claims, "aud": "someone-else"}, key)
    for method, path in [("get", "/api/v1/users"), ("get", "/api/v1/auth/me"), ("get", "/api/v1/audit-events")]:
        assert getattr(client, method)(path, headers=bearer(token)).status_code == 401


def test_token_with_integer_subject_is_refused(world, client, config):  # C06
    world.user("root@example.test", "platform_admin")
    claims = _claims_of(world.login("root@example.test")["access_token"])
    token = _forge({**claims, "sub": 12345}, config["JWT_SECRET_KEY"])
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401


def test_opaque_strings_are_not_bearer_tokens(world, client):  # C07
    world.user("root@example.test", "platform_admin")
    from admin_api.core.security import new_secret_token

    assert client.get("/api/v1/users", headers=bearer(new_secret_token())).status_code == 401


def test_disabled_user_tokens_die_at_once(std, client):  # C08
    h, people = std["h"], std["people"]
    amy_tokens = std["world"].login("amy@example.test")
    assert client.delete(f"/api/v1/users/{people['amy'].id}", headers=h["alice"]).status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(amy_tokens["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(amy_tokens["refresh_token"])).status_code == 401
    login = client.post("/api/v1/auth/login", json={"email": "amy@example.test", "password": PASSWORD})
    assert login.status_code == 401 and login.json["message"].startswith("Invalid email or password.")


# --- hardening found by trying to break it ----------------------------------------------------

def _count_hashes(monkeypatch) -> list:
    from admin_api.core import security

    calls = []
    original = security.PasswordHasher.verify
    monkeypatch.setattr(security.PasswordHasher, "verify", lambda self, h, p: calls.append(1) or original(self, h, p))
    return calls


def test_ambiguity_is_decided_by_the_email_never_by_the_password(world, client, monkeypatch):
    """Two accounts share an address: whatever the password, the usual 401 (its message says to name the
    tenant), after one hash, identical to an unknown email's.

    It used to be 422 only when the password matched two accounts (a password oracle across accounts), then
    422 for any password (which confirmed that the address exists).
    """
    a, b = world.tenant("tenant-a"), world.tenant("tenant-b")
    world.user("sam@example.test", "member", a, password="sam's password in tenant a")
    world.user("sam@example.test", "member", b)
    calls = _count_hashes(monkeypatch)
    answers = [client.post("/api/v1/auth/login", json={"email": "sam@example.test", "password": password})
               for password in ("a wrong password", "sam's password in tenant a", PASSWORD)]
    unknown = client.post("/api/v1/auth/login", json={"email": "nobody@example.test", "password": PASSWORD})
    assert [r.status_code for r in answers] == [401, 401, 401]
    assert len({r.get_data() for r in [*answers, unknown]}) == 1
    assert calls == [1, 1, 1, 1]


def test_the_platform_scope_is_selectable(world, client):
    """A tenant user with a platform admin's address cannot lock the platform admin out: without `tenant`, the
    platform admin's account is the one meant (no tenant can make an operator's sign-in ambiguous)."""
    root = world.user("root@example.test", "platform_admin")
    a = world.tenant("tenant-a")
    copy = world.user("root@example.test", "member", a, password="the copy's own password")
    plain = client.post("/api/v1/auth/login", json={"email": "root@example.test", "password": PASSWORD})
    assert plain.status_code == 200 and plain.json["user"]["id"] == str(root.id)
    copy_without_tenant = client.post("/api/v1/auth/login", json={"email": "root@example.test",
                                                                   "password": "the copy's own password"})
    assert copy_without_tenant.status_code == 401
    as_root = client.post("/api/v1/auth/login", json={"email": "root@example.test", "password": PASSWORD, "tenant": "platform"})
    assert as_root.status_code == 200 and as_root.json["user"]["id"] == str(root.id)
    as_copy = client.post("/api/v1/auth/login", json={"email": "root@example.test", "password": "the copy's own password",
                                                      "tenant": "tenant-a"})
    assert as_copy.status_code == 200 and as_copy.json["user"]["id"] == str(copy.id)
    wrong_scope = client.post("/api/v1/auth/login", json={"email": "root@example.test", "password": PASSWORD,
                                                          "tenant": "tenant-a"})
    assert wrong_scope.status_code == 401


def test_a_stranger_cannot_lock_you_out_from_another_address(world, client, app):
    app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"] = 3
    world.user("alice@example.test", "platform_admin")
    attacker = {"REMOTE_ADDR": "203.0.113.7"}
    for _ in range(4):
        client.post("/api/v1/auth/login", json={"email": "alice@example.test", "password": "guess guess"},
                    environ_base=attacker)
    assert client.post("/api/v1/auth/login", json={"email": "alice@example.test", "password": PASSWORD},
                       environ_base=attacker).status_code == 429
    assert client.post("/api/v1/auth/login", json={"email": "alice@example.test", "password": PASSWORD},
                       environ_base={"REMOTE_ADDR": "198.51.100.2"}).status_code == 200


def test_successful_sign_ins_do_not_use_up_the_address_budget(world, client, app):
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 3
    world.user("alice@example.test", "platform_admin")
    for _ in range(8):
        assert client.post("/api/v1/auth/login", json={"email": "alice@example.test", "password": PASSWORD}).status_code == 200


def test_parallel_guesses_cannot_outrun_the_limit(world, make_app, monkeypatch):
    """The attempt is counted before the slow hash: 12 parallel guesses, limit 3, at most 3 hashes."""
    world.user("alice@example.test", "platform_admin")
    calls = _count_hashes(monkeypatch)
    monkeypatch.setitem(world.app.config, "LOGIN_MAX_FAILURES_PER_ACCOUNT", 3)
    statuses = in_threads(12, lambda: make_app(LOGIN_MAX_FAILURES_PER_ACCOUNT=3), lambda c: c.post(
        "/api/v1/auth/login", json={"email": "alice@example.test", "password": "a parallel guess"}).status_code)
    assert sorted(statuses) == [401] * 3 + [429] * 9
    assert len(calls) == 3


def test_parallel_sign_ins_of_one_user_all_succeed(world, make_app):
    """As many parallel sign-ins as the account's attempt limit: none conflicts, none deadlocks.

    (Each attempt is counted before its hash and given back after it, so more parallel attempts than the
    limit may meet a 429, right password or not: the limit counts attempts in flight.)
    """
    world.user("alice@example.test", "platform_admin")
    limit = world.app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]
    statuses = in_threads(limit, make_app, lambda c: c.post(
        "/api/v1/auth/login", json={"email": "alice@example.test", "password": PASSWORD}).status_code)
    assert statuses == [200] * limit


def test_parallel_revokes_of_one_token_write_one_event(world, make_app, app):
    world.user("alice@example.test", "platform_admin")
    token = world.login("alice@example.test")["access_token"]
    statuses = in_threads(5, make_app, lambda c: c.post("/api/v1/auth/revoke", headers=bearer(token), json={}).status_code)
    assert statuses.count(204) >= 1 and set(statuses) <= {204, 401}
    assert audit_actions(app, action="auth.revoke") == ["auth.revoke"]


FAR_FUTURE_CLAIMS = {"exp far away": {"exp": 10**20}, "exp beyond the longest lifetime": {"exp": 4_102_444_800},
                     "iat_us text": {"iat_us": "abc"}, "iat_us fraction": {"iat_us": 1.5}, "no iat_us": {"iat_us": None},
                     # an issue time in the future outlived disable and tenant delete (tokens issued before a cut)
                     "iat_us far ahead": {"iat_us": 10**40}, "iat_us an hour ahead": {"iat_us": (int(time.time()) + 3600) * 10**6},
                     "iat_us negative": {"iat_us": -10**40},
                     # these answered 500: text the database or hmac cannot take
                     "jti lone surrogate": {"jti": "\ud800"}, "jti NUL": {"jti": "a\x00b"}, "jti spaces": {"jti": "a b"},
                     "cred not ascii": {"cred": "é" * 22}, "cred lone surrogate": {"cred": "\ud800"}, "no cred": {"cred": None}}


@pytest.mark.parametrize("change", ["no exp", "type embed", "type reset", "long jti", "no jti", *FAR_FUTURE_CLAIMS])
def test_tokens_we_would_never_issue_are_refused_even_with_our_key(world, client, config, change):
    """What a leaked key could sign: a token that never expires, other token kinds, a jti the list cannot hold,
    an issue time that is not a number (these last ones once answered 500)."""
    world.user("root@example.test", "platform_admin")
    claims = _claims_of(world.login("root@example.test")["access_token"])
    if change in FAR_FUTURE_CLAIMS:
        claims = {k: v for k, v in {**claims, **FAR_FUTURE_CLAIMS[change]}.items() if v is not None}
    elif change == "no exp":
        claims.pop("exp")
    elif change.startswith("type"):
        claims["type"] = change.split()[1]
    elif change == "long jti":
        claims["jti"] = "j" * 100
    else:
        claims.pop("jti")
    token = _forge(claims, config["JWT_SECRET_KEY"])
    for path in ("/api/v1/auth/me", "/api/v1/users"):
        assert client.get(path, headers=bearer(token)).status_code == 401
    assert client.post("/api/v1/auth/revoke", headers=bearer(token), json={}).status_code == 401


@pytest.mark.parametrize("form", ["braces", "urn", "hex", "upper"])
def test_a_subject_in_another_spelling_of_the_same_uuid_is_refused(world, client, config, form):
    """Only the form we issue names a user: `{uuid}`, `urn:uuid:...` and friends were taken for it."""
    world.user("root@example.test", "platform_admin")
    claims = _claims_of(world.login("root@example.test")["access_token"])
    sub = claims["sub"]
    claims["sub"] = {"braces": "{" + sub + "}", "urn": f"urn:uuid:{sub}", "hex": sub.replace("-", ""), "upper": sub.upper()}[form]
    assert client.get("/api/v1/auth/me", headers=bearer(_forge(claims, config["JWT_SECRET_KEY"]))).status_code == 401


@pytest.mark.parametrize("change", list(FAR_FUTURE_CLAIMS))
def test_a_refresh_token_we_would_never_issue_is_refused_in_a_revoke_body(world, client, config, app, change):
    world.user("root@example.test", "platform_admin")
    tokens = world.login("root@example.test")
    claims = {k: v for k, v in {**_claims_of(tokens["refresh_token"]), **FAR_FUTURE_CLAIMS[change]}.items() if v is not None}
    response = client.post("/api/v1/auth/revoke", headers=bearer(tokens["access_token"]),
                           json={"refresh_token": _forge(claims, config["JWT_SECRET_KEY"])})
    assert response.status_code == 422 and "refresh_token" in response.json["errors"]
    assert audit_actions(app, action="auth.revoke") == []
    assert client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 200


def test_token_answers_are_not_cached_and_401_says_bearer(world, client):
    world.user("root@example.test", "platform_admin")
    login = client.post("/api/v1/auth/login", json={"email": "root@example.test", "password": PASSWORD})
    assert login.headers["Cache-Control"] == "no-store"
    refused = client.get("/api/v1/users")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_address_over_its_limit_writes_no_row_per_new_email(world, client, app):
    """Refused attempts must not let one client fill the throttle table with a row per invented email."""
    from sqlalchemy import func, select

    from admin_api.auth.models import LoginThrottle
    from admin_api.extensions import db

    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 3
    for n in range(3):
        client.post("/api/v1/auth/login", json={"email": f"guess{n}@example.test", "password": "nope nope"})
    with app.app_context():
        rows = db.session.scalar(select(func.count()).select_from(LoginThrottle))
    for n in range(20):
        response = client.post("/api/v1/auth/login", json={"email": f"new{n}@example.test", "password": "nope nope"})
        assert response.status_code == 429
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LoginThrottle)) == rows


def test_purge_expired_forgets_finished_windows_and_dead_revocations(world, client, app, runner):
    from datetime import timedelta

    from sqlalchemy import select

    from admin_api.auth.models import LoginThrottle, RevokedToken
    from admin_api.core.db import utcnow
    from admin_api.extensions import db

    world.user("alice@example.test", "platform_admin")
    client.post("/api/v1/auth/login", json={"email": "alice@example.test", "password": "wrong wrong"})
    tokens = world.login("alice@example.test")
    client.post("/api/v1/auth/revoke", headers=bearer(tokens["access_token"]), json={})
    live = world.login("alice@example.test")
    client.post("/api/v1/auth/revoke", headers=bearer(live["access_token"]), json={})
    with app.app_context():
        old = utcnow() - timedelta(days=30)
        for row in db.session.scalars(select(LoginThrottle)):
            row.window_started_at = old
        expired = db.session.get(RevokedToken, _claims_of(tokens["access_token"])["jti"])
        expired.expires_at = old
        db.session.commit()
    result = runner.invoke(args=["purge-expired"])
    assert result.exit_code == 0 and "Removed" in result.output
    with app.app_context():
        assert db.session.scalars(select(LoginThrottle)).all() == []
        assert [r.jti for r in db.session.scalars(select(RevokedToken))] == [_claims_of(live["access_token"])["jti"]]
    assert client.get("/api/v1/auth/me", headers=bearer(live["access_token"])).status_code == 401


def test_the_tenant_slug_of_a_sign_in_is_case_insensitive(world, client):
    a, b = world.tenant("tenant-a"), world.tenant("tenant-b")
    world.user("sam@example.test", "member", a)
    world.user("sam@example.test", "member", b)
    response = client.post("/api/v1/auth/login", json={"email": "sam@example.test", "password": PASSWORD,
                                                       "tenant": " Tenant-B "})
    assert response.status_code == 200 and response.json["user"]["tenant_id"] == str(b.id)


# --- password reset with a one-time token (C07, C11) -------------------------------------------

RESET = "/api/v1/auth/password-reset"
CHANGE = "/api/v1/auth/change-password"
FIRST, SECOND = "the first new passphrase", "the second new passphrase"


def issue_reset_token(client, admin_headers, user_id) -> str:
    response = client.post(f"/api/v1/users/{user_id}/reset-password", headers=admin_headers, json={})
    assert response.status_code == 200, response.json
    return response.json["reset_token"]


def credentials(app, user_id) -> tuple:
    """What a refused reset or change must leave as it was: the user's credentials, reset tokens, audit events."""
    from sqlalchemy import func, select

    from admin_api.audit.models import AuditEvent
    from admin_api.extensions import db
    from admin_api.users.models import PasswordResetToken, User

    with app.app_context():
        user = db.session.get(User, user_id)
        resets = db.session.execute(select(PasswordResetToken.token_digest, PasswordResetToken.expires_at)).all()
        events = db.session.scalar(select(func.count()).select_from(AuditEvent))
        return user.password_hash, user.must_change_password, user.tokens_valid_after, user.version, resets, events


def test_a_reset_token_works_once(std, client, app):  # C11
    amy = std["people"]["amy"]
    token = issue_reset_token(client, std["h"]["alice"], amy.id)
    assert client.post(RESET, json={"token": token, "new_password": FIRST}).status_code == 204
    assert login_status(client, amy.email) == 401
    assert login_status(client, amy.email, FIRST) == 200
    before = credentials(app, amy.id)
    replay = client.post(RESET, json={"token": token, "new_password": SECOND})
    assert replay.status_code == 410 and replay.json["code"] == 410
    assert credentials(app, amy.id) == before
    assert login_status(client, amy.email, FIRST) == 200 and login_status(client, amy.email, SECOND) == 401
    events = client.get("/api/v1/audit-events", headers=std["h"]["root"], query_string={"action": "auth.password_reset"}).json
    assert len(events) == 1 and events[0]["actor_id"] == str(amy.id) and events[0]["target_id"] == str(amy.id)
    assert FIRST not in str(events) and token not in str(events)


def test_a_newer_reset_token_kills_the_older_one(std, client, app):  # C11
    amy = std["people"]["amy"]
    first = issue_reset_token(client, std["h"]["alice"], amy.id)
    second = issue_reset_token(client, std["h"]["alice"], amy.id)
    before = credentials(app, amy.id)
    assert client.post(RESET, json={"token": first, "new_password": FIRST}).status_code == 410
    assert credentials(app, amy.id) == before
    assert client.post(RESET, json={"token": second, "new_password": SECOND}).status_code == 204
    assert login_status(client, amy.email, SECOND) == 200


def _expire_reset_tokens(app) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from admin_api.core.db import utcnow
    from admin_api.extensions import db
    from admin_api.users.models import PasswordResetToken

    with app.app_context():
        db.session.execute(update(PasswordResetToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


@pytest.mark.parametrize("spoiler", ["unknown", "expired", "disabled", "disabled then restored", "tenant deleted",
                                     "tenant deleted then restored", "password changed", "temporary password set"])
def test_every_unusable_reset_token_gets_the_same_410(std, client, app, spoiler):
    amy, h = std["people"]["amy"], std["h"]
    token = issue_reset_token(client, h["alice"], amy.id)
    if spoiler == "unknown":
        token = token[:-4] + "AAAA"
    elif spoiler == "expired":
        _expire_reset_tokens(app)
    elif spoiler.startswith("disabled"):
        assert client.delete(f"/api/v1/users/{amy.id}", headers=h["alice"]).status_code == 204
        if spoiler.endswith("restored"):
            assert client.post(f"/api/v1/users/{amy.id}/restore", headers=h["alice"]).status_code == 200
    elif spoiler.startswith("tenant deleted"):
        assert client.delete(f"/api/v1/tenants/{std['a'].id}", headers=h["root"]).status_code == 204
        if spoiler.endswith("restored"):
            assert client.post(f"/api/v1/tenants/{std['a'].id}/restore", headers=h["root"]).status_code == 200
    elif spoiler == "password changed":
        amy_headers = std["world"].headers(amy.email)
        assert client.post(CHANGE, headers=amy_headers, json={"current_password": PASSWORD, "new_password": SECOND}
                           ).status_code == 204
    else:
        assert client.post(f"/api/v1/users/{amy.id}/reset-password", headers=h["root"],
                           json={"new_password": SECOND}).status_code == 200
    before = credentials(app, amy.id)
    response = client.post(RESET, json={"token": token, "new_password": FIRST})
    assert response.status_code == 410
    assert response.json == {"code": 410, "status": "Gone", "message": response.json["message"]}
    assert response.json["message"] == client.post(RESET, json={"token": "nonsense", "new_password": FIRST}).json["message"]
    assert credentials(app, amy.id) == before  # nothing changed, no audit event
    assert audit_actions(app, action="auth.password_reset") == []


@pytest.mark.parametrize("new_password, problem", [
    ("short", "at least"), ("password1234", "common"), ("amy@example.test", "email"), ("AMY", "at least"),
])
def test_a_refused_new_password_leaves_the_token_usable(std, client, app, new_password, problem):
    amy = std["people"]["amy"]
    token = issue_reset_token(client, std["h"]["alice"], amy.id)
    before = credentials(app, amy.id)
    response = client.post(RESET, json={"token": token, "new_password": new_password})
    assert response.status_code == 422 and problem in " ".join(response.json["errors"]["new_password"])
    assert credentials(app, amy.id) == before
    assert client.post(RESET, json={"token": token, "new_password": FIRST}).status_code == 204


@pytest.mark.parametrize("body, field", [
    ({"new_password": FIRST}, "token"), ({"token": "x"}, "new_password"), ({"token": "", "new_password": FIRST}, "token"),
    ({"token": "x", "new_password": FIRST, "user_id": "someone"}, "user_id"), ({"token": 5, "new_password": FIRST}, "token"),
])
def test_password_reset_bad_bodies_are_422(std, client, app, body, field):
    before = credentials(app, std["people"]["amy"].id)
    response = client.post(RESET, json=body)
    assert response.status_code == 422 and field in response.json["errors"]
    assert credentials(app, std["people"]["amy"].id) == before


def test_password_reset_attempts_are_throttled_per_address(std, client, app):
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 3
    token = issue_reset_token(client, std["h"]["alice"], std["people"]["amy"].id)
    for n in range(3):
        assert client.post(RESET, json={"token": f"guess-{n}", "new_password": FIRST}).status_code == 410
    blocked = client.post(RESET, json={"token": token, "new_password": FIRST})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    other = client.post(RESET, json={"token": token, "new_password": FIRST}, environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert other.status_code == 204


def test_a_reset_token_is_no_bearer_token(std, client):  # C07
    token = issue_reset_token(client, std["h"]["alice"], std["people"]["amy"].id)
    for path in ("/api/v1/users", "/api/v1/auth/me", "/api/v1/tenants"):
        assert client.get(path, headers=bearer(token)).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(token)).status_code == 401
    assert client.post(CHANGE, headers=bearer(token), json={"current_password": PASSWORD, "new_password": FIRST}
                       ).status_code == 401


def test_two_concurrent_uses_of_one_reset_token_one_wins(std, make_app, app):
    """Both find the token usable; the conditional DELETE lets exactly one through."""
    amy = std["people"]["amy"]
    token = issue_reset_token(std["world"].client, std["h"]["alice"], amy.id)
    chosen = [FIRST, SECOND]  # one each
    statuses = in_threads(2, make_app, lambda c: c.post(RESET, json={"token": token, "new_password": chosen.pop()}).status_code)
    assert sorted(statuses) == [204, 410]
    assert audit_actions(app, action="auth.password_reset") == ["auth.password_reset"]
    client = std["world"].client
    assert sorted([login_status(client, amy.email, FIRST), login_status(client, amy.email, SECOND)]) == [200, 401]


# --- change password -------------------------------------------------------------------------

def test_change_password_revokes_every_token_of_the_caller(std, client, app):
    world, amy = std["world"], std["people"]["amy"]
    one, two = world.login(amy.email), world.login(amy.email)
    response = client.post(CHANGE, headers=bearer(one["access_token"]),
                           json={"current_password": PASSWORD, "new_password": FIRST})
    assert response.status_code == 204 and response.get_data() == b""
    for tokens in (one, two):  # the caller's own token too: it signs in again
        assert client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 401
        assert client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code == 401
    assert login_status(client, amy.email) == 401 and login_status(client, amy.email, FIRST) == 200
    [event] = client.get("/api/v1/audit-events", headers=std["h"]["root"], query_string={"action": "auth.change_password"}).json
    assert event["actor_id"] == str(amy.id) and event["changes"] is None
    assert client.get("/api/v1/auth/me", headers=std["h"]["alice"]).status_code == 200  # other users keep theirs


@pytest.mark.parametrize("body, field", [
    ({"current_password": "not my password", "new_password": FIRST}, "current_password"),
    ({"current_password": PASSWORD, "new_password": PASSWORD}, "new_password"),          # must differ
    ({"current_password": PASSWORD, "new_password": "short"}, "new_password"),
    ({"current_password": PASSWORD, "new_password": "amy@example.test"}, "new_password"),
    ({"current_password": PASSWORD, "new_password": "password1234"}, "new_password"),
    ({"current_password": PASSWORD}, "new_password"),
    ({"new_password": FIRST}, "current_password"),
    ({"current_password": PASSWORD, "new_password": FIRST, "user_id": "x"}, "user_id"),
])
def test_change_password_refusals_change_nothing(std, client, app, body, field):
    amy = std["people"]["amy"]
    before = credentials(app, amy.id)
    response = client.post(CHANGE, headers=std["h"]["amy"], json=body)
    assert response.status_code == 422 and field in response.json["errors"]
    assert credentials(app, amy.id) == before
    assert client.get("/api/v1/auth/me", headers=std["h"]["amy"]).status_code == 200  # still signed in


def test_change_password_needs_an_access_token(std, client):
    body = {"current_password": PASSWORD, "new_password": FIRST}
    assert client.post(CHANGE, json=body).status_code == 401
    refresh = std["world"].login("amy@example.test")["refresh_token"]
    assert client.post(CHANGE, headers=bearer(refresh), json=body).status_code == 401


def test_wrong_current_passwords_are_throttled(std, client, app):
    app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"] = 3
    for _ in range(3):
        assert client.post(CHANGE, headers=std["h"]["amy"], json={"current_password": "guess guess",
                                                                   "new_password": FIRST}).status_code == 422
    blocked = client.post(CHANGE, headers=std["h"]["amy"], json={"current_password": PASSWORD, "new_password": FIRST})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert login_status(client, "amy@example.test") == 200  # the password did not change
    # Another account is not affected.
    assert client.post(CHANGE, headers=std["h"]["bea"], json={"current_password": PASSWORD,
                                                              "new_password": FIRST}).status_code == 204


# --- C08: old tokens do not survive logout, reset, disable, tenant delete ---------------------

def test_old_tokens_survive_nothing(std, client):  # C08
    world, h, alice = std["world"], std["h"], std["people"]["alice"]
    a1, a2 = world.login(alice.email), world.login(alice.email)
    assert client.post("/api/v1/auth/revoke", headers=bearer(a1["access_token"]), json={}).status_code == 204
    assert client.get("/api/v1/users", headers=bearer(a1["access_token"])).status_code == 401
    assert client.get("/api/v1/users", headers=bearer(a2["access_token"])).status_code == 200
    issue_reset_token(client, h["root"], alice.id)  # an admin reset
    assert client.get("/api/v1/users", headers=bearer(a2["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(a2["refresh_token"])).status_code == 401
    a3 = world.login(alice.email)
    assert client.delete(f"/api/v1/users/{alice.id}", headers=h["root"]).status_code == 204  # disable alice
    assert client.get("/api/v1/auth/me", headers=bearer(a3["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(a3["refresh_token"])).status_code == 401
    refused = client.post("/api/v1/auth/login", json={"email": alice.email, "password": PASSWORD})
    assert refused.status_code == 401 and refused.json["message"].startswith("Invalid email or password.")
    amy = world.login("amy@example.test")
    assert client.delete(f"/api/v1/tenants/{std['a'].id}", headers=h["root"]).status_code == 204  # delete tenant-a
    for token in (amy["access_token"], h["amy"]["Authorization"].split()[1]):
        assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(amy["refresh_token"])).status_code == 401
    assert client.post(f"/api/v1/tenants/{std['a'].id}/restore", headers=h["root"]).status_code == 200  # restore both
    assert client.post(f"/api/v1/users/{alice.id}/restore", headers=h["root"]).status_code == 200
    assert login_status(client, alice.email) == 200 and login_status(client, "amy@example.test") == 200
    for token in (a2["access_token"], a3["access_token"], amy["access_token"]):
        assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401
    for token in (a2["refresh_token"], a3["refresh_token"], amy["refresh_token"]):
        assert client.post("/api/v1/auth/refresh", headers=bearer(token)).status_code == 401


@pytest.mark.parametrize("action", ["disable", "admin reset", "temporary password", "tenant delete", "change password"])
def test_another_worker_refuses_the_old_token_on_the_very_next_request(std, make_app, action):
    """One app instance makes the change; another one, on the same database, refuses the old tokens at once."""
    first, second = make_app().test_client(), make_app().test_client()
    amy, h = std["people"]["amy"], std["h"]
    old = std["world"].login(amy.email)
    assert second.get("/api/v1/auth/me", headers=bearer(old["access_token"])).status_code == 200  # warm: it was valid
    if action == "disable":
        response = first.delete(f"/api/v1/users/{amy.id}", headers=h["alice"])
    elif action == "admin reset":
        response = first.post(f"/api/v1/users/{amy.id}/reset-password", headers=h["alice"], json={})
    elif action == "temporary password":
        response = first.post(f"/api/v1/users/{amy.id}/reset-password", headers=h["alice"], json={"new_password": FIRST})
    elif action == "tenant delete":
        response = first.delete(f"/api/v1/tenants/{std['a'].id}", headers=h["root"])
    else:
        response = first.post(CHANGE, headers=h["amy"], json={"current_password": PASSWORD, "new_password": FIRST})
    assert response.status_code in (200, 204), response.get_json()
    assert second.get("/api/v1/auth/me", headers=bearer(old["access_token"])).status_code == 401
    assert second.post("/api/v1/auth/refresh", headers=bearer(old["refresh_token"])).status_code == 401
    assert second.get("/api/v1/auth/me", headers=h["bob"]).status_code == 200  # others are untouched


@pytest.mark.parametrize("change", ["admin reset", "own change"])
def test_a_sign_in_racing_a_password_change_gets_no_live_session(std, make_app, monkeypatch, change):
    """The sign-in checked the old password; the change committed before its tokens were made: they are dead."""
    from admin_api.auth import service as auth_service

    amy, other = std["people"]["amy"], make_app().test_client()
    amy_headers = std["world"].headers(amy.email)
    real = auth_service.verify_password
    changed = []

    def verify_then_change(password_hash, password):
        ok = real(password_hash, password)
        if ok and not changed:
            changed.append(1)
            if change == "admin reset":
                response = other.post(f"/api/v1/users/{amy.id}/reset-password", headers=std["h"]["alice"],
                                      json={"new_password": "the admin's new passphrase", "temporary": False})
            else:
                response = other.post("/api/v1/auth/change-password", headers=amy_headers,
                                      json={"current_password": PASSWORD, "new_password": "amy's new passphrase"})
            assert response.status_code in (200, 204), response.json
        return ok

    monkeypatch.setattr(auth_service, "verify_password", verify_then_change)
    raced = std["world"].client.post("/api/v1/auth/login", json={"email": amy.email, "password": PASSWORD})
    if raced.status_code == 200:
        for token in (raced.json["access_token"], raced.json["refresh_token"]):
            assert other.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401
        assert other.post("/api/v1/auth/refresh", headers=bearer(raced.json["refresh_token"])).status_code == 401


def test_a_password_change_only_session_cannot_refresh_itself(std, client):
    amy = std["people"]["amy"]
    client.post(f"/api/v1/users/{amy.id}/reset-password", headers=std["h"]["alice"],
                json={"new_password": "a temporary passphrase"})
    limited = client.post("/api/v1/auth/login", json={"email": amy.email, "password": "a temporary passphrase"}).json
    refused = client.post("/api/v1/auth/refresh", headers=bearer(limited["refresh_token"]))
    assert refused.status_code == 403 and "change your password" in refused.json["message"]
    assert client.post("/api/v1/auth/revoke", headers=bearer(limited["access_token"]), json={}).status_code == 204
