"""Invitations over HTTP: invite, list, read, revoke, resend, accept (C07, C12), the operator command."""
import json
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from admin_api.audit.models import AuditEvent
from admin_api.core.db import utcnow
from admin_api.core.requestlog import JsonFormatter
from admin_api.core.security import token_digest
from admin_api.extensions import db
from admin_api.invitations.models import Invitation
from admin_api.users.models import User
from tests.conftest import PASSWORD, audit_actions, bearer, in_threads, login_status, new_id

INV = "/api/v1/invitations"
NEW_PASSWORD = "a brand new passphrase"
FIELDS = {"id", "tenant_id", "email", "role", "status", "expires_at", "created_at", "updated_at", "invited_by",
          "accepted_at", "accepted_user_id", "revoked_at"}


def invite(client, headers, email="carl@example.test", role="member", **extra) -> dict:
    response = client.post(INV, headers=headers, json={"email": email, "role": role, **extra})
    assert response.status_code == 201, response.json
    return response.json


def accept(client, invitation, token=None, password=NEW_PASSWORD, **extra):
    body = {"token": invitation["token"] if token is None else token, "password": password,
            "display_name": "Carl", **extra}
    return client.post(f"{INV}/{invitation['id']}/accept", json=body)


def db_state(app) -> tuple:
    """The invitation rows, the users and the number of audit events: what a refusal must leave as it was."""
    with app.app_context():
        invitations = db.session.execute(select(
            Invitation.id, Invitation.status, Invitation.pending_key, Invitation.token_digest, Invitation.expires_at,
            Invitation.version, Invitation.accepted_user_id, Invitation.revoked_at)).all()
        users = db.session.execute(select(User.id, User.email, User.status, User.version)).all()
        events = db.session.scalar(select(func.count()).select_from(AuditEvent))
        return set(invitations), set(users), events


def assert_refused(app, before, response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json and response.json["code"] == status
    assert db_state(app) == before
    return response.json


def expire(app, invitation_id=None) -> None:
    with app.app_context():
        stmt = update(Invitation).values(expires_at=utcnow() - timedelta(seconds=1))
        if invitation_id is not None:
            stmt = stmt.where(Invitation.id == uuid.UUID(invitation_id))
        db.session.execute(stmt)
        db.session.commit()


def audit_events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        found = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        db.session.expunge_all()
        return found


@pytest.fixture
def inv(std, client):
    """std, plus carl@example.test invited into tenant-a by alice (`inv["carl"]` holds the token)."""
    return {**std, "carl": invite(client, std["h"]["alice"])}


# --- the story of a new user ------------------------------------------------------------------

def test_invite_accept_and_sign_in_as_the_new_user(std, client, app):
    h, a, alice = std["h"], std["a"], std["people"]["alice"]
    response = client.post(INV, headers=h["alice"], json={"email": "Carl@Example.TEST", "role": "member"})
    assert response.status_code == 201
    created = response.json
    assert set(created) == FIELDS | {"token"}
    assert created["email"] == "carl@example.test" and created["role"] == "member" and created["status"] == "pending"
    assert created["tenant_id"] == str(a.id) and created["invited_by"] == str(alice.id)
    assert response.headers["Location"] == f"{INV}/{created['id']}" and response.headers["ETag"]
    assert response.headers["Cache-Control"] == "no-store"
    expires = created["expires_at"]
    assert timedelta(days=7) - timedelta(minutes=5) < _parse(expires) - utcnow() <= timedelta(days=7)
    with app.app_context():  # only the digest is stored
        row = db.session.get(Invitation, uuid.UUID(created["id"]))
        assert row.token_digest == token_digest(created["token"])
        assert created["token"] not in json.dumps([str(getattr(row, c.key)) for c in Invitation.__table__.columns])

    accepted = client.post(f"{INV}/{created['id']}/accept", json={
        "token": created["token"], "password": NEW_PASSWORD, "display_name": "Carl Sagan"})
    assert accepted.status_code == 201, accepted.json
    user = accepted.json["user"]
    assert (user["email"], user["role"], user["tenant_id"], user["display_name"], user["status"]) == (
        "carl@example.test", "member", str(a.id), "Carl Sagan", "active")
    me = client.get("/api/v1/auth/me", headers=bearer(accepted.json["access_token"]))
    assert me.status_code == 200 and me.json["id"] == user["id"]
    assert client.post("/api/v1/auth/refresh", headers=bearer(accepted.json["refresh_token"])).status_code == 200
    assert login_status(client, "CARL@example.test", NEW_PASSWORD) == 200

    shown = client.get(f"{INV}/{created['id']}", headers=h["alice"]).json
    assert shown["status"] == "accepted" and shown["accepted_user_id"] == user["id"] and shown["accepted_at"]
    assert "token" not in shown
    events = client.get("/api/v1/audit-events", headers=h["alice"], query_string={"target_id": created["id"]}).json
    assert [e["action"] for e in events] == ["invitation.accept", "invitation.create"]  # newest first
    assert events[0]["actor_id"] == user["id"] and events[0]["tenant_id"] == str(a.id)
    assert events[1]["actor_id"] == str(alice.id)
    assert events[1]["changes"] == {"after": {"email": "carl@example.test", "role": "member", "status": "pending",
                                              "expires_at": events[1]["changes"]["after"]["expires_at"]}}
    assert created["token"] not in json.dumps(events)


def _parse(timestamp: str):
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def test_the_lifetime_is_configurable(std, make_app):
    client = make_app(INVITATION_TTL=3600).test_client()
    created = invite(client, std["h"]["alice"])
    assert timedelta(minutes=55) < _parse(created["expires_at"]) - utcnow() <= timedelta(hours=1)


# --- create -----------------------------------------------------------------------------------

@pytest.mark.parametrize("who, body, status", [
    (None, {}, 401),
    ("amy", {}, 403),                                         # members do not invite
    ("alice", {"tenant_id": "b"}, 404),                       # another tenant looks like a missing one
    ("root", {"tenant_id": "missing"}, 404),
    ("alice", {"role": "platform_admin"}, 422),               # invitations are for tenant users
    ("root", {"role": "platform_admin"}, 422),
    ("root", {}, 422),                                        # platform admins name the tenant
    ("alice", {"role": "owner"}, 422),
    ("alice", {"email": "not an email"}, 422),
    ("alice", {"email": None}, 422),
    ("alice", {"status": "accepted"}, 422),                   # no mass assignment
    ("alice", {"token": "chosen-by-me"}, 422),
    ("alice", {"expires_at": "2099-01-01T00:00:00Z"}, 422),
    ("alice", {"email": "AMY@example.test"}, 409),            # already a user of the tenant (C12)
    ("bob", {"email": "bea@Example.test"}, 409),
    ("root", {"tenant_id": "deleted"}, 409),                  # a deleted tenant takes no one in
])
def test_create_refusals_store_nothing(std, client, app, who, body, status):
    tenants = {"a": std["a"].id, "b": std["b"].id, "missing": new_id(),
               "deleted": std["world"].tenant("gone", status="deleted").id}
    body = {"email": "carl@example.test", "role": "member", **body}
    if "tenant_id" in body:
        body["tenant_id"] = str(tenants[body["tenant_id"]])
    before = db_state(app)
    answer = assert_refused(app, before, client.post(INV, headers=std["h"].get(who, {}), json=body), status)
    if status == 422:
        assert answer["errors"]
    if "platform_admin" in json.dumps(body):
        assert "tenant users" in json.dumps(answer["errors"])


@pytest.mark.parametrize("who, role, tenant", [
    ("alice", "member", "a"), ("alice", "tenant_admin", "a"), ("bob", "tenant_admin", "b"),
    ("root", "member", "a"), ("root", "tenant_admin", "b"),
])
def test_who_invites_whom(std, client, app, who, role, tenant):
    body = {"tenant_id": str(std[tenant].id)} if who == "root" else {}
    created = invite(client, std["h"][who], role=role, **body)
    assert created["tenant_id"] == str(std[tenant].id) and created["role"] == role
    assert audit_actions(app, action="invitation.create") == ["invitation.create"]
    assert accept(client, created).json["user"]["role"] == role


def test_one_pending_invitation_per_address_and_tenant_any_case(inv, client, app):  # C12
    h = inv["h"]
    before = db_state(app)
    twin = client.post(INV, headers=h["alice"], json={"email": "CARL@example.Test", "role": "tenant_admin"})
    assert_refused(app, before, twin, 409)
    assert "pending invitation" in twin.json["message"]
    # Another tenant is another scope.
    invite(client, h["bob"], email="Carl@example.test")
    # A revoked one stands in the way of nothing; nor does an expired one.
    assert client.delete(f"{INV}/{inv['carl']['id']}", headers=h["alice"]).status_code == 204
    second = invite(client, h["alice"], email="carl@EXAMPLE.test")
    expire(app, second["id"])
    third = invite(client, h["alice"])
    statuses = {i["id"]: i["status"] for i in client.get(INV, headers=h["alice"]).json}
    assert statuses == {inv["carl"]["id"]: "revoked", second["id"]: "expired", third["id"]: "pending"}


def test_the_database_refuses_a_second_pending_invitation(inv, client, app, monkeypatch):
    """With the pre-check out of the way (two creates racing past it), the unique pending key decides: 409."""
    from admin_api.invitations import service

    monkeypatch.setattr(service, "_other_pending", lambda key, holder: None)
    before = db_state(app)
    twin = client.post(INV, headers=inv["h"]["alice"], json={"email": "carl@example.test", "role": "member"})
    assert_refused(app, before, twin, 409)
    assert client.get(INV, headers=inv["h"]["alice"]).status_code == 200  # the session is not poisoned


def test_concurrent_invitations_of_one_address_make_one(std, make_app, app):
    h = std["h"]["alice"]
    statuses = in_threads(3, make_app, lambda c: c.post(INV, headers=h, json={
        "email": "carl@example.test", "role": "member"}).status_code)
    assert sorted(statuses) == [201, 409, 409]
    assert audit_actions(app, action="invitation.create") == ["invitation.create"]


# --- list and read ----------------------------------------------------------------------------

@pytest.fixture
def several(inv, client, app):
    """carl (pending), dora (accepted), erin (revoked), finn (expired) in tenant-a; gus (pending) in tenant-b."""
    h = inv["h"]
    made = {"carl": inv["carl"]}
    for name in ("dora", "erin", "finn"):
        made[name] = invite(client, h["alice"], email=f"{name}@example.test")
    made["gus"] = invite(client, h["bob"], email="gus@example.test")
    assert accept(client, made["dora"]).status_code == 201
    assert client.delete(f"{INV}/{made['erin']['id']}", headers=h["alice"]).status_code == 204
    expire(app, made["finn"]["id"])
    return {**inv, "made": made}


def listed(client, headers, **query) -> list[str]:
    response = client.get(INV, headers=headers, query_string=query)
    assert response.status_code == 200, response.json
    if "page_size" not in query:
        assert response.headers["X-Total-Count"] == str(len(response.json))
    assert all(set(item) == FIELDS for item in response.json)  # never a token
    return [item["email"].split("@")[0] for item in response.json]


@pytest.mark.parametrize("who, query, expected", [
    ("alice", {}, ["finn", "erin", "dora", "carl"]),
    ("bob", {}, ["gus"]),
    ("root", {}, ["gus", "finn", "erin", "dora", "carl"]),
    ("root", {"tenant_id": "b"}, ["gus"]),
    ("alice", {"status": "pending"}, ["carl"]),
    ("alice", {"status": "accepted"}, ["dora"]),
    ("alice", {"status": "revoked"}, ["erin"]),
    ("alice", {"status": "expired"}, ["finn"]),
    ("root", {"status": "pending"}, ["gus", "carl"]),
    ("alice", {"email": "Dora@EXAMPLE.test"}, ["dora"]),      # C12
    ("bob", {"email": "dora@example.test"}, []),
    ("alice", {"sort": "email"}, ["carl", "dora", "erin", "finn"]),
])
def test_lists_show_each_tenant_its_own_with_filters(several, client, who, query, expected):
    query = {k: str(several["b"].id) if v == "b" else v for k, v in query.items()}
    assert listed(client, several["h"][who], **query) == expected


def test_pages_of_invitations(several, client):
    response = client.get(INV, headers=several["h"]["alice"], query_string={"sort": "-email", "page_size": 3, "page": 2})
    assert [i["email"] for i in response.json] == ["carl@example.test"]
    assert response.headers["X-Total-Count"] == "4" and json.loads(response.headers["X-Pagination"])["total_pages"] == 2


@pytest.mark.parametrize("who, query, status", [
    (None, {}, 401),
    ("amy", {}, 403),                              # members do not list invitations
    ("amy", {"tenant_id": "a"}, 403),
    ("alice", {"tenant_id": "b"}, 404),
    ("root", {"tenant_id": "missing"}, 404),
    ("alice", {"status": "gone"}, 422),
    ("alice", {"email": "nope"}, 422),
    ("alice", {"sort": "token_digest"}, 422),      # C02
    ("alice", {"tenant": "b"}, 422),               # C02: a typo never widens the list
])
def test_list_refusals(std, client, who, query, status):
    ids = {"a": str(std["a"].id), "b": str(std["b"].id), "missing": new_id()}
    query = {k: ids.get(v, v) for k, v in query.items()}
    response = client.get(INV, headers=std["h"].get(who, {}), query_string=query)
    assert response.status_code == status and response.json["code"] == status


@pytest.mark.parametrize("who, target, status", [
    (None, "carl", 401),
    ("alice", "carl", 200), ("root", "carl", 200),
    ("amy", "carl", 404),                          # members see no invitation
    ("bob", "carl", 404),                          # another tenant's
    ("alice", "missing", 404),
])
def test_read_matrix(inv, client, who, target, status):
    invitation_id = inv["carl"]["id"] if target == "carl" else new_id()
    response = client.get(f"{INV}/{invitation_id}", headers=inv["h"].get(who, {}))
    assert response.status_code == status
    if status == 200:
        assert set(response.json) == FIELDS and response.headers["ETag"]
    if status == 404:
        assert response.json["message"] == "Invitation not found."


def test_an_expired_invitation_shows_expired_with_a_new_etag(inv, client, app):
    url, h = f"{INV}/{inv['carl']['id']}", inv["h"]["alice"]
    first = client.get(url, headers=h)
    assert client.get(url, headers={**h, "If-None-Match": first.headers["ETag"]}).status_code == 304
    expire(app)
    later = client.get(url, headers={**h, "If-None-Match": first.headers["ETag"]})
    assert later.status_code == 200 and later.json["status"] == "expired"
    assert later.headers["ETag"] != first.headers["ETag"]


def _put_in_state(inv, client, app, state: str) -> None:
    """Take carl's invitation (or its address or tenant) to `state`; other states leave it pending."""
    carl, h = inv["carl"], inv["h"]
    if state == "accepted":
        assert accept(client, carl).status_code == 201
    elif state == "revoked":
        assert client.delete(f"{INV}/{carl['id']}", headers=h["alice"]).status_code == 204
    elif state in ("expired", "invited again"):
        expire(app)
        if state == "invited again":
            invite(client, h["alice"])
    elif state == "tenant deleted":
        assert client.delete(f"/api/v1/tenants/{inv['a'].id}", headers=h["root"]).status_code == 204
    elif state == "email taken":
        created = client.post("/api/v1/users", headers=h["alice"], json={
            "email": "Carl@example.test", "display_name": "Carl", "role": "member"})
        assert created.status_code == 201


def _call_on(inv, who: str | None, target: str) -> tuple[dict, str]:
    """Headers and invitation id of a refusal matrix row: a stale If-Match, an unknown id, or carl's."""
    headers = {**inv["h"].get(who, {}), **({"If-Match": '"stale"'} if target == "stale" else {})}
    return headers, new_id() if target == "missing" else inv["carl"]["id"]


# --- revoke -----------------------------------------------------------------------------------

def test_revoke_kills_the_token(inv, client, app):
    carl, h = inv["carl"], inv["h"]
    response = client.delete(f"{INV}/{carl['id']}", headers=h["alice"])
    assert response.status_code == 204
    shown = client.get(f"{INV}/{carl['id']}", headers=h["alice"]).json
    assert shown["status"] == "revoked" and shown["revoked_at"]
    before = db_state(app)
    assert_refused(app, before, accept(client, carl), 410)
    [event] = audit_events(app, "invitation.revoke")
    assert event.actor_id == inv["people"]["alice"].id and event.target_id == carl["id"]
    assert event.changes == {"before": {"status": "pending"}, "after": {"status": "revoked"}}


@pytest.mark.parametrize("who, target, status", [
    (None, "carl", 401),
    ("amy", "carl", 404), ("bob", "carl", 404), ("alice", "missing", 404),
    ("alice", "stale", 412),
    ("alice", "revoked", 409), ("alice", "accepted", 409),
])
def test_revoke_refusals_change_nothing(inv, client, app, who, target, status):
    _put_in_state(inv, client, app, target)
    headers, invitation_id = _call_on(inv, who, target)
    before = db_state(app)
    assert_refused(app, before, client.delete(f"{INV}/{invitation_id}", headers=headers), status)


def test_an_expired_invitation_can_be_closed_for_good(inv, client, app):
    expire(app, inv["carl"]["id"])
    url, h = f"{INV}/{inv['carl']['id']}", inv["h"]["alice"]
    assert client.delete(url, headers=h).status_code == 204
    assert client.get(url, headers=h).json["status"] == "revoked"
    assert client.post(f"{url}/resend", headers=h).status_code == 409  # no longer revivable


def test_a_tenant_cannot_make_an_operators_sign_in_ambiguous(inv, client):
    """A tenant admin invites the platform admin's address into its tenant and accepts: the operator still
    signs in without naming a tenant; the new tenant user names its tenant."""
    invitation = invite(client, inv["h"]["alice"], email="ROOT@example.test")
    accepted = accept(client, invitation)
    assert accepted.status_code == 201 and accepted.json["user"]["last_login_at"]  # accepting signed it in
    assert login_status(client, "root@example.test", PASSWORD) == 200
    as_member = client.post("/api/v1/auth/login", json={"email": "root@example.test", "password": NEW_PASSWORD,
                                                        "tenant": "tenant-a"})
    assert as_member.status_code == 200 and as_member.json["user"]["role"] == "member"


def test_revoke_with_the_current_etag(inv, client):
    url, h = f"{INV}/{inv['carl']['id']}", inv["h"]["alice"]
    etag = client.get(url, headers=h).headers["ETag"]
    assert client.delete(url, headers={**h, "If-Match": etag}).status_code == 204


def test_revoking_works_while_the_tenant_is_deleted(inv, client):
    h = inv["h"]
    assert client.delete(f"/api/v1/tenants/{inv['a'].id}", headers=h["root"]).status_code == 204
    assert client.delete(f"{INV}/{inv['carl']['id']}", headers=h["root"]).status_code == 204


# --- resend -----------------------------------------------------------------------------------

def test_resend_issues_a_new_token_and_kills_the_old_one(inv, client, app):
    carl, h = inv["carl"], inv["h"]
    expire(app)
    response = client.post(f"{INV}/{carl['id']}/resend", headers=h["alice"])
    assert response.status_code == 200
    resent = response.json
    assert set(resent) == FIELDS | {"token"} and resent["token"] != carl["token"]
    assert resent["status"] == "pending" and _parse(resent["expires_at"]) > utcnow() + timedelta(days=6)
    assert response.headers["ETag"] and response.headers["Cache-Control"] == "no-store"
    before = db_state(app)
    assert_refused(app, before, accept(client, carl), 404)  # the old token: as good as none
    [event] = audit_events(app, "invitation.resend")
    assert event.actor_id == inv["people"]["alice"].id and event.target_id == carl["id"]
    assert event.changes["before"]["status"] == "expired" and event.changes["after"]["status"] == "pending"
    assert carl["token"] not in json.dumps(event.changes) and resent["token"] not in json.dumps(event.changes)
    assert accept(client, resent).status_code == 201


@pytest.mark.parametrize("who, target, status", [
    (None, "carl", 401),
    ("amy", "carl", 404), ("bob", "carl", 404), ("alice", "missing", 404),
    ("alice", "stale", 412),
    ("alice", "revoked", 409), ("alice", "accepted", 409),
    ("alice", "email taken", 409),                 # the address became a user of the tenant meanwhile
    ("alice", "invited again", 409),               # an expired one, with a newer pending invitation
    ("root", "tenant deleted", 409),
])
def test_resend_refusals_change_nothing(inv, client, app, who, target, status):
    _put_in_state(inv, client, app, target)
    headers, invitation_id = _call_on(inv, who, target)
    before = db_state(app)
    assert_refused(app, before, client.post(f"{INV}/{invitation_id}/resend", headers=headers), status)


# --- accept -----------------------------------------------------------------------------------

@pytest.mark.parametrize("state, status", [
    ("pending", 404), ("accepted", 404), ("revoked", 404), ("expired", 404), ("tenant deleted", 404),
])
def test_a_wrong_token_is_an_unknown_id_whatever_the_state(inv, client, app, state, status):
    """The token is checked before anything is told: ids cannot be probed, states cannot be read."""
    carl = inv["carl"]
    _put_in_state(inv, client, app, state)
    before = db_state(app)
    wrong = assert_refused(app, before, accept(client, carl, token=carl["token"][:-4] + "AAAA"), status)
    unknown = assert_refused(app, before, accept(client, {**carl, "id": new_id()}), status)
    assert wrong == unknown == {"code": 404, "status": "Not Found", "message": "Invitation not found."}
    assert accept(client, carl, token="x").json == wrong


@pytest.mark.parametrize("state, status", [
    ("accepted", 409), ("revoked", 410), ("expired", 410), ("tenant deleted", 410), ("email taken", 409),
])
def test_accept_refusals_with_the_right_token_change_nothing(inv, client, app, state, status):
    _put_in_state(inv, client, app, state)
    before = db_state(app)
    answer = assert_refused(app, before, accept(client, inv["carl"], display_name="Carl II"), status)
    assert set(answer) == {"code", "status", "message"}  # no existing user's id for a caller without a token


@pytest.mark.parametrize("password, problem", [
    ("short", "at least"), ("password1234", "common"), ("carl@example.test", "email"), ("            ", "spaces"),
])
def test_a_refused_password_leaves_the_invitation_usable(inv, client, app, password, problem):
    before = db_state(app)
    response = accept(client, inv["carl"], password=password)
    assert_refused(app, before, response, 422)
    assert problem in " ".join(response.json["errors"]["password"])
    assert accept(client, inv["carl"]).status_code == 201


@pytest.mark.parametrize("body, field", [
    ({"token": None}, "token"), ({"token": ""}, "token"), ({"password": None}, "password"),
    ({"display_name": ""}, "display_name"), ({"role": "tenant_admin"}, "role"), ({"email": "x@example.test"}, "email"),
    ({"tenant_id": new_id()}, "tenant_id"), ({"password": "x" * 257}, "password"),
])
def test_accept_bad_bodies_are_422(inv, client, app, body, field):
    carl = inv["carl"]
    full = {"token": carl["token"], "password": NEW_PASSWORD, "display_name": "Carl", **body}
    before = db_state(app)
    response = client.post(f"{INV}/{carl['id']}/accept", json={k: v for k, v in full.items() if v is not None})
    assert_refused(app, before, response, 422)
    assert field in response.json["errors"]


def test_accepting_needs_no_token_and_ignores_one(inv, client):
    """The invitee may still carry someone's session: the invitation's token decides, not the bearer."""
    response = client.post(f"{INV}/{inv['carl']['id']}/accept", headers=inv["h"]["root"], json={
        "token": inv["carl"]["token"], "password": NEW_PASSWORD, "display_name": "Carl"})
    assert response.status_code == 201 and response.json["user"]["tenant_id"] == str(inv["a"].id)


def test_accept_attempts_are_throttled_like_sign_ins(inv, client, app):
    app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"] = 2
    carl = inv["carl"]
    for n in range(2):
        assert accept(client, carl, token=f"guess-{n}").status_code == 404
    blocked = accept(client, carl)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert audit_actions(app, action="invitation.accept") == []
    other = client.post(f"{INV}/{carl['id']}/accept", environ_base={"REMOTE_ADDR": "198.51.100.7"}, json={
        "token": carl["token"], "password": NEW_PASSWORD, "display_name": "Carl"})
    assert other.status_code == 201


def test_concurrent_accepts_one_wins(inv, make_app, app):
    """Every accept finds the invitation usable; the conditional UPDATE lets exactly one through."""
    carl = inv["carl"]
    statuses = in_threads(4, make_app, lambda c: accept(c, carl).status_code)
    assert sorted(statuses) == [201, 409, 409, 409]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User).where(User.email == "carl@example.test")) == 1
    assert audit_actions(app, action="invitation.accept") == ["invitation.accept"]


def test_an_invitation_token_is_no_bearer_token(inv, client):  # C07
    token = bearer(inv["carl"]["token"])
    for path in ("/api/v1/users", "/api/v1/auth/me", INV, f"{INV}/{inv['carl']['id']}"):
        assert client.get(path, headers=token).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=token).status_code == 401
    assert client.post(INV, headers=token, json={"email": "x@example.test", "role": "member"}).status_code == 401


def test_tokens_never_reach_logs_audit_or_later_answers(std, app_log):
    app, caplog = app_log
    client, h = app.test_client(), std["h"]
    caplog.clear()
    created = invite(client, h["alice"])
    resent = client.post(f"{INV}/{created['id']}/resend", headers=h["alice"]).json
    assert accept(client, created).status_code == 404
    accepted = accept(client, resent)
    assert accepted.status_code == 201
    later = [client.get(INV, headers=h["root"]), client.get(f"{INV}/{created['id']}", headers=h["root"]),
             client.get("/api/v1/audit-events", headers=h["root"])]
    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    with app.app_context():
        stored_events = json.dumps([e.changes for e in db.session.scalars(select(AuditEvent))], default=str)
    for secret in (created["token"], resent["token"], token_digest(resent["token"]), NEW_PASSWORD):
        assert secret not in logged and secret not in stored_events
        assert all(secret not in answer.get_data(as_text=True) for answer in later)
    assert "token_digest" not in json.dumps([answer.json for answer in later])


# --- the operator command ---------------------------------------------------------------------

def test_flask_invitations_create_prints_the_token_once(std, app, runner, client):
    result = runner.invoke(args=["invitations", "create", "Dan@Example.test", "--tenant", "Tenant-A",
                                 "--role", "tenant_admin"])
    assert result.exit_code == 0, result.output
    token = result.stdout.splitlines()[1]
    assert result.stdout.count(token) == 1 and "dan@example.test" in result.stdout
    invitation_id = re.search(rf"{INV}/([0-9a-f-]{{36}})/accept", result.stdout).group(1)
    accepted = accept(client, {"id": invitation_id, "token": token})
    assert accepted.status_code == 201 and accepted.json["user"]["role"] == "tenant_admin"
    [event] = audit_events(app, "invitation.create")
    assert event.actor_email == "cli" and event.actor_id is None and event.tenant_id == std["a"].id
    with app.app_context():
        assert db.session.get(Invitation, uuid.UUID(invitation_id)).invited_by is None


@pytest.mark.parametrize("args, message", [
    (["amy@example.test", "--tenant", "tenant-a"], "already exists"),
    (["dan@example.test", "--tenant", "nowhere"], "No tenant"),
    (["not-an-email", "--tenant", "tenant-a"], "email"),
])
def test_flask_invitations_create_refusals(std, app, runner, args, message):
    before = db_state(app)
    result = runner.invoke(args=["invitations", "create", *args])
    assert result.exit_code == 1 and message in result.stderr and "Traceback" not in result.output
    assert db_state(app) == before


def test_an_invited_admin_manages_its_tenant_at_once(std, client):
    """The whole loop as a console runs it: the new tenant admin invites the next person."""
    created = invite(client, std["h"]["root"], email="tia@example.test", role="tenant_admin",
                     tenant_id=str(std["b"].id))
    tia = accept(client, created).json
    nested = invite(client, bearer(tia["access_token"]), email="ned@example.test")
    assert nested["tenant_id"] == str(std["b"].id) and nested["invited_by"] == tia["user"]["id"]
    assert login_status(client, "bea@example.test", PASSWORD) == 200
