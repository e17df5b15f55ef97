"""Audit events over HTTP: read-only, tenant-scoped, filtered, newest first (C02, C03)."""
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from admin_api.audit.models import AuditEvent
from admin_api.extensions import db
from tests.conftest import new_id

EVENTS = "/api/v1/audit-events"
USERS = "/api/v1/users"
TENANTS = "/api/v1/tenants"
FIELDS = {"id", "occurred_at", "action", "actor_id", "actor_email", "tenant_id", "target_type", "target_id", "ip",
          "user_agent", "request_id", "changes"}
SECRET = "carol's very own secret"

pytestmark = pytest.mark.real_sign_ins  # these tests read the sign-ins' audit events


def stored_events(app) -> list[AuditEvent]:
    with app.app_context():
        events = list(db.session.scalars(select(AuditEvent)))
        for event in events:
            db.session.expunge(event)
        return events


def ids(response) -> set[str]:
    return {event["id"] for event in response.json}


@pytest.fixture
def history(std, client):
    """A few changes in both tenants and on the platform, after everyone signed in."""
    h, a = std["h"], str(std["a"].id)

    def ok(response, status=200):
        assert response.status_code == status, response.get_data(as_text=True)
        return response.json if response.data else None

    carol = ok(client.post(USERS, headers=h["root"], json={"email": "carol@example.test", "display_name": "Carol",
                                                           "role": "member", "tenant_id": a, "password": SECRET}), 201)
    dave = ok(client.post(USERS, headers=h["alice"], json={"email": "dave@example.test", "display_name": "Dave", "role": "member"}), 201)
    bert = ok(client.post(USERS, headers=h["bob"], json={"email": "bert@example.test", "display_name": "Bert", "role": "member"}), 201)
    ok(client.patch(f"{USERS}/{dave['id']}", headers=h["alice"], json={"display_name": "David"}))
    ok(client.delete(f"{USERS}/{bert['id']}", headers=h["bob"]), 204)
    acme = ok(client.post(TENANTS, headers=h["root"], json={"name": "Acme", "slug": "acme"}), 201)
    ok(client.patch(f"{TENANTS}/{a}", headers=h["root"], json={"name": "Tenant Alpha"}))
    client.post("/api/v1/auth/login", json={"email": "nobody@example.test", "password": "wrong password!"})
    return {**std, "carol": carol, "dave": dave, "bert": bert, "acme": acme}


# --- list ------------------------------------------------------------------------------------

def test_platform_admin_sees_every_event_newest_first(history, client, app):
    response = client.get(EVENTS, headers=history["h"]["root"], query_string={"page_size": 100})
    assert response.status_code == 200
    stored = stored_events(app)
    assert ids(response) == {str(e.id) for e in stored} and len(stored) == 13  # 5 logins, 7 changes, 1 failed login
    times = [e["occurred_at"] for e in response.json]
    assert times == sorted(times, reverse=True)
    assert response.json[0]["action"] == "auth.login_failed"
    assert response.headers["X-Total-Count"] == str(len(stored))
    assert all(set(event) == FIELDS for event in response.json)


@pytest.mark.parametrize("admin, tenant", [("alice", "a"), ("bob", "b")])
def test_tenant_admin_sees_only_its_tenants_events(history, client, app, admin, tenant):
    tenant_id = history[tenant].id
    expected = {str(e.id) for e in stored_events(app) if e.tenant_id == tenant_id}
    for query in ({}, {"tenant_id": str(tenant_id)}):
        response = client.get(EVENTS, headers=history["h"][admin], query_string={"page_size": 100, **query})
        assert response.status_code == 200
        assert ids(response) == expected and response.headers["X-Total-Count"] == str(len(expected))
    actions = sorted(e["action"] for e in response.json)
    if tenant == "a":  # root's changes inside tenant-a belong to tenant-a's log
        assert actions == ["auth.login", "auth.login", "tenant.update", "user.create", "user.create", "user.update"]
    else:
        assert actions == ["auth.login", "auth.login", "user.create", "user.delete"]


def test_platform_admin_filters_by_tenant(history, client, app):
    response = client.get(EVENTS, headers=history["h"]["root"], query_string={"tenant_id": history["acme"]["id"]})
    assert [e["action"] for e in response.json] == ["tenant.create"]


@pytest.mark.parametrize("who, query, status", [
    (None, {}, 401),
    ("amy", {}, 403),                    # members do not read the log
    ("amy", {"tenant_id": "a"}, 403),
    ("alice", {"tenant_id": "b"}, 404),  # another tenant looks like a missing one
    ("alice", {"tenant_id": "missing"}, 404),
    ("root", {"tenant_id": "missing"}, 404),
])
def test_list_refusals(std, client, who, query, status):
    values = {"a": str(std["a"].id), "b": str(std["b"].id), "missing": new_id()}
    response = client.get(EVENTS, headers=std["h"].get(who, {}), query_string={k: values[v] for k, v in query.items()})
    assert response.status_code == status and response.json["code"] == status
    assert "X-Total-Count" not in response.headers


@pytest.mark.parametrize("who", ["root", "alice"])
@pytest.mark.parametrize("query, field", [  # C02
    ({"actr": "x"}, "actr"), ({"tenant_idd": "x"}, "tenant_idd"), ({"sort": "action"}, "sort"),
    ({"sort": "-created_at"}, "sort"), ({"page_size": "101"}, "page_size"), ({"actor_id": "bob"}, "actor_id"),
    ({"since": "yesterday"}, "since"), ({"since": "2026-01-01T00:00:00"}, "since"),  # no zone: ambiguous
    ({"until": "2026-13-01T00:00:00Z"}, "until"), ({"action": ""}, "action"), ({"target_id": "x" * 65}, "target_id"),
])
def test_bad_or_unknown_query_arguments_are_422(std, client, who, query, field):
    response = client.get(EVENTS, headers=std["h"][who], query_string=query)
    assert response.status_code == 422
    assert field in response.json["errors"]


@pytest.mark.parametrize("name, value, who", [
    ("action", "user.create", "root"),
    ("action", "user.create", "alice"),
    ("actor_id", "alice", "root"),
    ("actor_id", "root", "alice"),   # root's changes inside tenant-a, not root's sign-in
    ("target_type", "tenant", "root"),
    ("target_id", "dave", "alice"),
    ("target_id", "bert", "bob"),
])
def test_filters(history, client, app, name, value, who):
    people = history["people"]
    value = {"alice": str(people["alice"].id), "root": str(people["root"].id), "dave": history["dave"]["id"],
             "bert": history["bert"]["id"]}.get(value, value)
    scope = history["people"][who].tenant_id
    expected = {str(e.id) for e in stored_events(app)
                if str(getattr(e, name)) == value and (scope is None or e.tenant_id == scope)}
    response = client.get(EVENTS, headers=history["h"][who], query_string={name: value, "page_size": 100})
    assert response.status_code == 200
    assert expected and ids(response) == expected
    assert response.headers["X-Total-Count"] == str(len(expected))


def test_action_and_target_filters_combine(history, client):
    query = {"action": "user.update", "target_type": "user", "target_id": history["dave"]["id"]}
    [event] = client.get(EVENTS, headers=history["h"]["alice"], query_string=query).json
    assert event["changes"] == {"before": {"display_name": "Dave"}, "after": {"display_name": "David"}}
    assert event["actor_id"] == str(history["people"]["alice"].id) and event["actor_email"] == "alice@example.test"


def test_since_is_inclusive_and_until_exclusive(history, client):
    h = history["h"]["root"]
    oldest_first = client.get(EVENTS, headers=h, query_string={"sort": "occurred_at", "page_size": 100}).json
    pivot, end = oldest_first[5], oldest_first[9]

    def window(**query):
        return [e["id"] for e in client.get(EVENTS, headers=h, query_string={"sort": "occurred_at", **query}).json]

    assert window(since=pivot["occurred_at"]) == [e["id"] for e in oldest_first[5:]]
    assert window(until=pivot["occurred_at"]) == [e["id"] for e in oldest_first[:5]]
    assert window(since=pivot["occurred_at"], until=end["occurred_at"]) == [e["id"] for e in oldest_first[5:9]]
    # The same instant written with another offset means the same thing.
    shifted = datetime.fromisoformat(pivot["occurred_at"]).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert window(since=shifted) == window(since=pivot["occurred_at"])
    assert window(since="2999-01-01T00:00:00Z") == []


def test_pages_and_sort(history, client):
    h = history["h"]["root"]
    newest_first = client.get(EVENTS, headers=h, query_string={"page_size": 100}).json
    oldest_first = client.get(EVENTS, headers=h, query_string={"sort": "occurred_at", "page_size": 100}).json
    assert oldest_first == list(reversed(newest_first))
    assert client.get(EVENTS, headers=h, query_string={"sort": "-occurred_at", "page_size": 100}).json == newest_first
    total = len(newest_first)
    seen = []
    for page in range(1, 4):
        response = client.get(EVENTS, headers=h, query_string={"page": page, "page_size": 5})
        assert response.headers["X-Total-Count"] == str(total)
        assert json.loads(response.headers["X-Pagination"])["page"] == page
        seen += response.json
    assert seen == newest_first[:15]
    beyond = client.get(EVENTS, headers=h, query_string={"page": 9, "page_size": 5})
    assert beyond.status_code == 200 and beyond.json == [] and beyond.headers["X-Total-Count"] == str(total)


# --- one event -------------------------------------------------------------------------------

def _event(app, action, **match):
    return next(e for e in stored_events(app) if e.action == action and all(getattr(e, k) == v for k, v in match.items()))


@pytest.mark.parametrize("who, which, status", [
    ("root", "a", 200), ("root", "b", 200), ("root", "platform", 200),
    ("alice", "a", 200), ("bob", "b", 200),
    ("alice", "b", 404), ("bob", "a", 404),
    ("alice", "platform", 404),   # events of no tenant belong to platform admins
    ("amy", "a", 404),
    ("root", "missing", 404), (None, "a", 401),
])
def test_read_one_event(history, client, app, who, which, status):
    people = history["people"]
    targets = {"a": _event(app, "user.create", target_id=history["dave"]["id"]),
               "b": _event(app, "user.create", target_id=history["bert"]["id"]),
               "platform": _event(app, "auth.login", actor_id=people["root"].id)}
    event_id = targets[which].id if which in targets else uuid.uuid4()
    response = client.get(f"{EVENTS}/{event_id}", headers=history["h"].get(who, {}))
    assert response.status_code == status and response.json["code" if status != 200 else "id"]
    if status == 200:
        assert set(response.json) == FIELDS and response.json["id"] == str(event_id)
    if status == 404:
        assert response.json["message"] == "Audit event not found."


def test_event_records_who_where_and_which_request(std, client, app):
    response = client.post(USERS, json={"email": "eve@example.test", "display_name": "Eve", "role": "member"},
                           headers={**std["h"]["alice"], "X-Request-ID": "console-42", "User-Agent": "react-admin/5"})
    assert response.headers["X-Request-ID"] == "console-42"
    [event] = client.get(EVENTS, headers=std["h"]["alice"], query_string={"action": "user.create"}).json
    assert event["request_id"] == "console-42" and event["user_agent"] == "react-admin/5"
    assert event["ip"] == "127.0.0.1" and event["actor_email"] == "alice@example.test"
    assert (event["target_type"], event["target_id"], event["tenant_id"]) == ("user", response.json["id"], str(std["a"].id))
    one = client.get(f"{EVENTS}/{event['id']}", headers=std["h"]["alice"])
    assert one.json == event
    cached = client.get(f"{EVENTS}/{event['id']}", headers={**std["h"]["alice"], "If-None-Match": one.headers["ETag"]})
    assert cached.status_code == 304 and cached.get_data() == b""


def test_no_secret_ever_reaches_the_log(history, client, app):
    client.post("/api/v1/auth/login", json={"email": "carol@example.test", "password": SECRET})
    response = client.get(EVENTS, headers=history["h"]["root"], query_string={"page_size": 100})
    text = response.get_data(as_text=True)
    assert SECRET not in text and "$argon2" not in text and "password" not in text
    for event in stored_events(app):
        assert SECRET not in json.dumps(event.changes or {})
    assert "carol@example.test" in text  # the search above did look at Carol's events


# --- read-only -------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("item", [False, True])
def test_the_log_cannot_be_written(std, client, app, method, item):
    url = f"{EVENTS}/{_event(app, 'auth.login').id}" if item else EVENTS
    before = {e.id: e.changes for e in stored_events(app)}
    response = getattr(client, method)(url, headers=std["h"]["root"], json={"action": "user.delete"})
    assert response.status_code == 405 and response.is_json and response.json["code"] == 405
    assert "GET" in response.headers["Allow"]
    assert {e.id: e.changes for e in stored_events(app)} == before
