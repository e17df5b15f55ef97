"""Users over HTTP: list, create, read, change, soft delete, restore, password reset (C02, C03, C07, C12, C16)."""
import json
import threading
import uuid

import pytest
from sqlalchemy import func, select

from admin_api.audit.models import AuditEvent
from admin_api.core.security import token_digest
from admin_api.extensions import db
from admin_api.users.models import PasswordResetToken, User
from tests.conftest import PASSWORD, audit_actions, bearer, events_of, in_threads, new_id

USERS = "/api/v1/users"


def db_state(app) -> tuple:
    """Every user row (what a client sees, and its credentials), the reset tokens, and the number of audit events."""
    with app.app_context():
        rows = db.session.execute(select(User.id, User.email, User.display_name, User.role, User.status,
                                         User.version, User.disabled_at, User.password_hash,
                                         User.must_change_password, User.tokens_valid_after)).all()
        resets = db.session.execute(select(PasswordResetToken.user_id, PasswordResetToken.token_digest)).all()
        events = db.session.scalar(select(func.count()).select_from(AuditEvent))
        return {row.id: tuple(row) for row in rows}, set(resets), events


def assert_refused(app, before, response, status: int) -> None:
    """A JSON error with the status, and no row or audit event changed."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json and response.json["code"] == status
    assert db_state(app) == before


def assert_no_secrets(response) -> None:
    def keys(value):
        if isinstance(value, dict):
            return set(value) | {k for v in value.values() for k in keys(v)}
        if isinstance(value, list):
            return {k for v in value for k in keys(v)}
        return set()

    assert not keys(response.json) & {"password", "password_hash", "email_key", "tokens_valid_after", "version"}
    assert "$argon2" not in response.get_data(as_text=True)


def emails(response) -> list[str]:
    return [user["email"] for user in response.json]


# --- list ------------------------------------------------------------------------------------

def test_platform_admin_lists_every_user_with_totals(std, client):
    response = client.get(USERS, headers=std["h"]["root"])
    assert response.status_code == 200
    assert sorted(emails(response)) == sorted(f"{n}@example.test" for n in ("root", "alice", "amy", "bob", "bea"))
    assert response.headers["X-Total-Count"] == "5"
    assert json.loads(response.headers["X-Pagination"])["total"] == 5
    assert set(response.json[0]) == {"id", "tenant_id", "email", "display_name", "role", "status", "created_at",
                                     "updated_at", "disabled_at", "last_login_at", "must_change_password"}
    assert_no_secrets(response)


@pytest.mark.parametrize("admin, tenant, expected", [
    ("alice", "a", {"alice@example.test", "amy@example.test"}),
    ("bob", "b", {"bob@example.test", "bea@example.test"}),
])
def test_tenant_admin_lists_exactly_its_tenant(std, client, admin, tenant, expected):
    for query in ({}, {"tenant_id": str(std[tenant].id)}):
        response = client.get(USERS, headers=std["h"][admin], query_string=query)
        assert response.status_code == 200
        assert set(emails(response)) == expected
        assert response.headers["X-Total-Count"] == "2"


@pytest.mark.parametrize("who, query, status", [
    (None, {}, 401),
    ("amy", {}, 403),                      # members do not list users
    ("amy", {"tenant_id": "a"}, 403),
    ("alice", {"tenant_id": "b"}, 404),    # another tenant looks like a missing one
    ("alice", {"tenant_id": "missing"}, 404),
    ("root", {"tenant_id": "missing"}, 404),
])
def test_list_refusals(std, client, who, query, status):
    ids = {"a": str(std["a"].id), "b": str(std["b"].id), "missing": new_id()}
    query = {k: ids[v] for k, v in query.items()}
    response = client.get(USERS, headers=std["h"].get(who, {}), query_string=query)
    assert response.status_code == status and response.json["code"] == status
    assert response.headers.get("X-Total-Count") is None


@pytest.mark.parametrize("who", ["root", "alice"])
@pytest.mark.parametrize("query, field", [  # C02: a typo never widens the list
    ({"tenant_idd": "B"}, "tenant_idd"), ({"sort": "password_hash"}, "sort"), ({"sort": "-password_hash"}, "sort"),
    ({"sort": "status"}, "sort"), ({"status": "deleted"}, "status"), ({"role": "god"}, "role"),
    ({"page_size": "101"}, "page_size"), ({"page_size": "0"}, "page_size"), ({"page": "0"}, "page"),
    ({"tenant_id": "not-a-uuid"}, "tenant_id"), ({"q": ""}, "q"),
    # int() would take these (a hostile review): only ASCII digits are a page number
    ({"page": "\uff15"}, "page"), ({"page": "\u0663"}, "page"), ({"page": " 1"}, "page"), ({"page": "1_0"}, "page"),
    ({"page_size": "+5"}, "page_size"), ({"page": "1.0"}, "page"),
])
def test_bad_or_unknown_query_arguments_are_422(std, client, who, query, field):
    query = {k: str(std["b"].id) if v == "B" else v for k, v in query.items()}
    response = client.get(USERS, headers=std["h"][who], query_string=query)
    assert response.status_code == 422
    assert field in response.json["errors"]


@pytest.fixture
def crowd(std):
    """tenant-a with five more members, created in this order (alpha is oldest)."""
    names = ["delta", "alpha", "echo", "charlie", "bravo"]
    for name in names:
        std["world"].user(f"{name}@example.test", "member", std["a"], display_name=name.title(),
                          status="disabled" if name in {"echo", "bravo"} else "active")
    return {**std, "created": ["alice", "amy", *names]}


def test_pages_of_a_sorted_list(crowd, client):
    seen = []
    for page, size in [(1, 3), (2, 3), (3, 1)]:
        response = client.get(USERS, headers=crowd["h"]["alice"], query_string={"page": page, "page_size": 3, "sort": "email"})
        assert response.status_code == 200 and len(response.json) == size
        assert response.headers["X-Total-Count"] == "7"
        meta = json.loads(response.headers["X-Pagination"])
        assert meta["total"] == 7 and meta["total_pages"] == 3 and meta["page"] == page
        seen += emails(response)
    assert seen == sorted(f"{n}@example.test" for n in crowd["created"])
    beyond = client.get(USERS, headers=crowd["h"]["alice"], query_string={"page": 4, "page_size": 3})
    assert beyond.status_code == 200 and beyond.json == []
    assert beyond.headers["X-Total-Count"] == "7"


@pytest.mark.parametrize("field", ["email", "display_name", "created_at"])
def test_sort_ascending_and_descending(crowd, client, field):
    h = crowd["h"]["alice"]
    ascending = client.get(USERS, headers=h, query_string={"sort": field}).json
    descending = client.get(USERS, headers=h, query_string={"sort": f"-{field}"}).json
    assert [u[field] for u in ascending] == sorted(u[field] for u in ascending)
    assert [u["id"] for u in descending] == [u["id"] for u in reversed(ascending)]
    if field == "created_at":
        assert [u["email"].split("@")[0] for u in ascending] == crowd["created"]
        assert client.get(USERS, headers=h).json == descending  # newest first by default


@pytest.mark.parametrize("query, expected", [
    ({"status": "disabled"}, {"echo", "bravo"}),
    ({"status": "active", "role": "member"}, {"amy", "delta", "alpha", "charlie"}),
    ({"role": "tenant_admin"}, {"alice"}),
    ({"q": "ALPHA"}, {"alpha"}),                 # name or email contains, any case
    ({"q": "a@ex"}, {"delta", "alpha"}),
    ({"q": "%"}, set()),                         # wildcards are taken literally
    ({"q": "_"}, set()),
    ({"q": "e", "status": "disabled", "sort": "-email"}, {"echo", "bravo"}),
])
def test_filters(crowd, client, query, expected):
    response = client.get(USERS, headers=crowd["h"]["root"], query_string={"tenant_id": str(crowd["a"].id), **query})
    assert response.status_code == 200
    assert {e.split("@")[0] for e in emails(response)} == expected
    assert response.headers["X-Total-Count"] == str(len(expected))


def test_filter_page_size_and_total_agree(crowd, client):
    response = client.get(USERS, headers=crowd["h"]["root"], query_string={"status": "active", "page_size": 2, "page": 2})
    assert len(response.json) == 2 and response.headers["X-Total-Count"] == "8"  # 3 others + 5 active of tenant-a


# --- create ----------------------------------------------------------------------------------

def test_tenant_admin_creates_a_member(std, client, app):
    response = client.post(USERS, headers={**std["h"]["alice"], "X-Request-ID": "req-create-1"}, json={
        "email": "  Carol@Example.TEST ", "display_name": "Carol", "role": "member", "password": "a long enough secret"})
    assert response.status_code == 201, response.json
    body = response.json
    assert body["email"] == "carol@example.test" and body["tenant_id"] == str(std["a"].id)
    assert body["role"] == "member" and body["status"] == "active" and body["disabled_at"] is None
    assert response.headers["Location"].endswith(f"{USERS}/{body['id']}")
    assert_no_secrets(response)
    fetched = client.get(response.headers["Location"], headers=std["h"]["alice"])
    assert fetched.json == body and fetched.headers["ETag"] == response.headers["ETag"]
    [event] = events_of(app, "user.create")
    assert event.actor_id == std["people"]["alice"].id and event.target_id == body["id"]
    assert event.tenant_id == std["a"].id and event.request_id == "req-create-1"
    assert event.changes == {"after": {"email": "carol@example.test", "display_name": "Carol", "role": "member",
                                       "status": "active"}}
    login = client.post("/api/v1/auth/login", json={"email": "CAROL@example.test", "password": "a long enough secret"})
    assert login.status_code == 200


@pytest.mark.parametrize("body, tenant", [
    ({"email": "ops@example.test", "display_name": "Ops", "role": "platform_admin"}, None),
    ({"email": "bo@example.test", "display_name": "Bo", "role": "tenant_admin", "tenant_id": "B"}, "B"),
    ({"email": "alice@example.test", "display_name": "Other Alice", "role": "member", "tenant_id": "B"}, "B"),
    ({"email": "alice@example.test", "display_name": "Platform Alice", "role": "platform_admin"}, None),
])
def test_platform_admin_creates_in_any_scope(std, client, app, body, tenant):
    body = {**body, **({"tenant_id": str(std["b"].id)} if tenant else {})}
    response = client.post(USERS, headers=std["h"]["root"], json=body)
    assert response.status_code == 201, response.json
    assert response.json["tenant_id"] == (str(std["b"].id) if tenant else None)
    assert audit_actions(app, action="user.create") == ["user.create"]


@pytest.mark.parametrize("who, body, status", [
    (None, {}, 401),
    ("amy", {}, 403),
    ("alice", {"role": "platform_admin"}, 403),
    ("alice", {"tenant_id": "B"}, 404),
    ("alice", {"tenant_id": "MISSING"}, 404),
    ("root", {}, 422),                               # a tenant user needs a tenant
    ("root", {"role": "platform_admin", "tenant_id": "A"}, 422),
    ("alice", {"status": "disabled"}, 422),          # no mass assignment
    ("alice", {"id": "ID"}, 422),
    ("alice", {"password_hash": "$argon2id$x"}, 422),
    ("alice", {"must_change_password": False}, 422),
    ("alice", {"email": "not-an-email"}, 422),
    ("alice", {"role": "owner"}, 422),
    ("alice", {"display_name": ""}, 422),
    ("alice", {"password": "short"}, 422),
    ("alice", {"password": "password1234"}, 422),    # common
    ("alice", {"password": "new@example.test"}, 422),  # the email itself
])
def test_create_refusals_change_nothing(std, client, app, who, body, status):
    values = {"A": str(std["a"].id), "B": str(std["b"].id), "MISSING": new_id(), "ID": new_id()}
    body = {"email": "new@example.test", "display_name": "New", "role": "member",
            **{k: values.get(v, v) if isinstance(v, str) else v for k, v in body.items()}}
    before = db_state(app)
    response = client.post(USERS, headers=std["h"].get(who, {}), json=body)
    assert_refused(app, before, response, status)
    if status == 422:
        assert response.json["errors"]


@pytest.mark.parametrize("sent", ["Alice@Example.test", "alice@example.test", "ALICE@EXAMPLE.TEST "])
def test_duplicate_email_any_case_is_409_naming_the_user(std, client, app, sent):  # C12
    before = db_state(app)
    response = client.post(USERS, headers=std["h"]["alice"], json={"email": sent, "display_name": "A", "role": "member"})
    assert_refused(app, before, response, 409)
    assert response.json["existing_user_id"] == str(std["people"]["alice"].id)
    assert "email" in response.json["errors"]


def test_disabled_users_keep_their_email(std, client, app):
    gone = std["world"].user("gone@example.test", "member", std["a"], status="disabled")
    before = db_state(app)
    response = client.post(USERS, headers=std["h"]["alice"], json={"email": "Gone@example.test", "display_name": "G", "role": "member"})
    assert_refused(app, before, response, 409)
    assert response.json["existing_user_id"] == str(gone.id)
    assert response.json["existing_user_status"] == "disabled"


def test_cannot_create_in_a_deleted_tenant(std, client, app):
    gone = std["world"].tenant("gone", status="deleted")
    before = db_state(app)
    response = client.post(USERS, headers=std["h"]["root"],
                           json={"email": "x@example.test", "display_name": "X", "role": "member", "tenant_id": str(gone.id)})
    assert_refused(app, before, response, 409)


def test_requests_after_a_409_succeed(std, client, app):  # C16
    body = {"email": "alice@example.test", "display_name": "Again", "role": "member"}
    assert client.post(USERS, headers=std["h"]["alice"], json=body).status_code == 409
    assert client.get(USERS, headers=std["h"]["alice"]).status_code == 200
    created = client.post(USERS, headers=std["h"]["alice"], json={**body, "email": "fresh@example.test"})
    assert created.status_code == 201


def test_requests_after_an_integrity_error_succeed(std, client, app, monkeypatch):  # C16, the race path
    from admin_api.users import service

    # A concurrent request created the same address after our pre-check: the unique constraint decides.
    monkeypatch.setattr(service, "find_by_email", lambda tenant_id, email: None)
    before = db_state(app)
    clash = client.post(USERS, headers=std["h"]["alice"], json={"email": "amy@example.test", "display_name": "Amy 2", "role": "member"})
    assert_refused(app, before, clash, 409)
    assert "INSERT" not in clash.get_data(as_text=True)
    assert client.get(f"{USERS}/{std['people']['amy'].id}", headers=std["h"]["alice"]).status_code == 200
    ok = client.post(USERS, headers=std["h"]["alice"], json={"email": "dan@example.test", "display_name": "Dan", "role": "member"})
    assert ok.status_code == 201
    assert audit_actions(app, action="user.create") == ["user.create"]


# --- read ------------------------------------------------------------------------------------

@pytest.mark.parametrize("who, target, status", [
    ("root", "bea", 200), ("alice", "amy", 200), ("alice", "alice", 200), ("amy", "amy", 200),
    ("amy", "alice", 404),      # members read only themselves
    ("alice", "bea", 404), ("bob", "amy", 404), ("alice", "root", 404), ("root", "missing", 404), (None, "amy", 401),
])
def test_read_one_user(std, client, who, target, status):
    user_id = std["people"][target].id if target in std["people"] else uuid.uuid4()
    response = client.get(f"{USERS}/{user_id}", headers=std["h"].get(who, {}))
    assert response.status_code == status and response.is_json
    if status == 200:
        assert response.json["id"] == str(user_id) and response.headers["ETag"]
        assert_no_secrets(response)
    if status == 404:
        assert response.json["message"] == "User not found."  # another tenant's user reads like a missing one


def test_if_none_match_current_is_304_without_body(std, client):  # C03
    url = f"{USERS}/{std['people']['amy'].id}"
    etag = client.get(url, headers=std["h"]["alice"]).headers["ETag"]
    cached = client.get(url, headers={**std["h"]["alice"], "If-None-Match": etag})
    assert cached.status_code == 304 and cached.get_data() == b""
    other = client.get(url, headers={**std["h"]["alice"], "If-None-Match": '"stale"'})
    assert other.status_code == 200 and other.json["email"] == "amy@example.test"


# --- change ----------------------------------------------------------------------------------

def test_tenant_admin_changes_a_user(std, client, app):
    url = f"{USERS}/{std['people']['amy'].id}"
    old = client.get(url, headers=std["h"]["alice"])
    response = client.patch(url, headers=std["h"]["alice"],
                            json={"display_name": "Amy Pond", "email": "Amy.Pond@Example.test", "role": "tenant_admin"})
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["display_name"], body["email"], body["role"]) == ("Amy Pond", "amy.pond@example.test", "tenant_admin")
    assert body["updated_at"] > old.json["updated_at"] and body["created_at"] == old.json["created_at"]
    assert response.headers["ETag"] != old.headers["ETag"]
    assert client.get(url, headers=std["h"]["alice"]).json == body
    assert_no_secrets(response)
    [event] = events_of(app, "user.update")
    assert event.actor_id == std["people"]["alice"].id and event.target_id == str(std["people"]["amy"].id)
    assert event.changes == {
        "before": {"display_name": "Amy", "email": "amy@example.test", "role": "member"},
        "after": {"display_name": "Amy Pond", "email": "amy.pond@example.test", "role": "tenant_admin"},
    }
    assert client.post("/api/v1/auth/login", json={"email": "amy.pond@example.test", "password": PASSWORD}).status_code == 200


def test_a_change_that_changes_nothing_writes_no_event(std, client, app):
    url = f"{USERS}/{std['people']['amy'].id}"
    etag = client.get(url, headers=std["h"]["alice"]).headers["ETag"]
    before = db_state(app)
    response = client.patch(url, headers=std["h"]["alice"], json={"display_name": "Amy", "email": "AMY@example.test"})
    assert response.status_code == 200 and response.headers["ETag"] == etag
    assert db_state(app) == before


def test_stale_if_match_is_412_and_current_one_wins(std, client, app):  # C03
    url = f"{USERS}/{std['people']['amy'].id}"
    h = std["h"]["alice"]
    first = client.get(url, headers=h).headers["ETag"]
    before = db_state(app)
    stale = client.patch(url, headers={**h, "If-Match": '"not-the-etag"'}, json={"display_name": "Stale"})
    assert_refused(app, before, stale, 412)
    assert stale.mimetype == "application/json"
    fresh = client.patch(url, headers={**h, "If-Match": first}, json={"display_name": "Fresh"})
    assert fresh.status_code == 200 and fresh.headers["ETag"] not in {first, ""}
    before = db_state(app)
    again = client.patch(url, headers={**h, "If-Match": first}, json={"display_name": "Late"})
    assert_refused(app, before, again, 412)
    assert client.get(url, headers=h).json["display_name"] == "Fresh"
    assert client.patch(url, headers={**h, "If-Match": "*"}, json={"display_name": "Any"}).status_code == 200
    assert client.patch(url, headers=h, json={"display_name": "No header"}).status_code == 200  # react-admin


@pytest.mark.parametrize("who, target, body, status", [
    (None, "amy", {"display_name": "X"}, 401),
    ("bob", "amy", {"display_name": "X"}, 404),
    ("alice", "root", {"display_name": "X"}, 404),
    ("alice", "missing", {"display_name": "X"}, 404),
    ("amy", "amy", {"role": "tenant_admin"}, 403),        # no self-promotion
    ("amy", "alice", {"display_name": "X"}, 404),
    ("alice", "amy", {"role": "platform_admin"}, 403),
    ("root", "amy", {"role": "platform_admin"}, 422),     # tenant users and platform admins do not convert
    ("root", "root", {"role": "member"}, 422),
    ("alice", "amy", {"tenant_id": "B"}, 422),            # no mass assignment
    ("alice", "amy", {"status": "disabled"}, 422),
    ("alice", "amy", {"password": "a long enough secret"}, 422),
    ("alice", "amy", {"id": "B"}, 422),
    ("alice", "amy", {"email": "nope"}, 422),
    ("alice", "amy", {"display_name": ""}, 422),
    ("alice", "amy", {"role": "owner"}, 422),
    ("alice", "amy", {"email": "Alice@Example.test"}, 409),  # C12
])
def test_change_refusals_change_nothing(std, client, app, who, target, body, status):
    user_id = std["people"][target].id if target in std["people"] else uuid.uuid4()
    body = {k: str(std["b"].id) if v == "B" else v for k, v in body.items()}
    before = db_state(app)
    response = client.patch(f"{USERS}/{user_id}", headers=std["h"].get(who, {}), json=body)
    assert_refused(app, before, response, status)
    if status == 409:
        assert response.json["existing_user_id"] == str(std["people"]["alice"].id)


def test_change_in_a_deleted_tenant_is_409(std, client, app):
    gone = std["world"].tenant("gone", status="deleted")
    ghost = std["world"].user("ghost@example.test", "member", gone)
    before = db_state(app)
    response = client.patch(f"{USERS}/{ghost.id}", headers=std["h"]["root"], json={"display_name": "Boo"})
    assert_refused(app, before, response, 409)


# --- soft delete -----------------------------------------------------------------------------

def test_delete_disables_the_user(std, client, app):
    url = f"{USERS}/{std['people']['amy'].id}"
    etag = client.get(url, headers=std["h"]["alice"]).headers["ETag"]
    response = client.delete(url, headers={**std["h"]["alice"], "If-Match": etag})
    assert response.status_code == 204 and response.get_data() == b""
    user = client.get(url, headers=std["h"]["alice"]).json
    assert user["status"] == "disabled" and user["disabled_at"] is not None
    assert emails(client.get(USERS, headers=std["h"]["alice"], query_string={"status": "disabled"})) == ["amy@example.test"]
    [event] = events_of(app, "user.delete")
    assert event.actor_id == std["people"]["alice"].id and event.target_id == str(std["people"]["amy"].id)
    assert event.tenant_id == std["a"].id
    assert event.changes == {"before": {"status": "active"}, "after": {"status": "disabled"}}


@pytest.mark.parametrize("who, target, status", [
    (None, "amy", 401),
    ("bob", "amy", 404), ("alice", "bea", 404), ("alice", "root", 404), ("root", "missing", 404),
    ("amy", "alice", 404),
    ("amy", "amy", 403),
    ("alice", "alice", 409),   # not yourself
    ("root", "root", 409),     # not yourself, and the last active platform admin
    ("alice", "stale", 412),
])
def test_delete_refusals_change_nothing(std, client, app, who, target, status):
    user_id = std["people"].get(target, std["people"]["amy"]).id if target != "missing" else uuid.uuid4()
    headers = {**std["h"].get(who, {}), **({"If-Match": '"stale"'} if target == "stale" else {})}
    before = db_state(app)
    assert_refused(app, before, client.delete(f"{USERS}/{user_id}", headers=headers), status)


def test_deleting_a_disabled_user_is_409(std, client, app):
    url = f"{USERS}/{std['people']['amy'].id}"
    assert client.delete(url, headers=std["h"]["alice"]).status_code == 204
    before = db_state(app)
    assert_refused(app, before, client.delete(url, headers=std["h"]["alice"]), 409)
    assert audit_actions(app, action="user.delete") == ["user.delete"]


def test_a_platform_admin_deletes_another(std, client, app):
    other = std["world"].user("ops@example.test", "platform_admin")
    assert client.delete(f"{USERS}/{other.id}", headers=std["h"]["root"]).status_code == 204
    assert client.get(f"{USERS}/{other.id}", headers=std["h"]["root"]).json["status"] == "disabled"


@pytest.mark.postgres_only
def test_two_platform_admins_deleting_each_other_leave_one(world, make_app, monkeypatch):
    """Both requests pass the "last admin?" check before either writes; the database must pick one winner."""
    from admin_api.users import service

    root, ops = world.user("root@example.test", "platform_admin"), world.user("ops@example.test", "platform_admin")
    headers = {root.id: world.headers(root.email), ops.id: world.headers(ops.email)}
    both_counted = threading.Barrier(2)
    count = service._active_platform_admins

    def count_then_wait():
        n = count()
        try:  # let the other request count too, unless the database makes it wait for us
            both_counted.wait(timeout=1.5)
        except threading.BrokenBarrierError:
            pass
        return n

    monkeypatch.setattr(service, "_active_platform_admins", count_then_wait)
    statuses = []

    def delete(client, actor, target):
        statuses.append(client.delete(f"{USERS}/{target}", headers=headers[actor]).status_code)

    workers = [make_app().test_client() for _ in range(2)]  # built first: building apps is not thread-safe
    threads = [threading.Thread(target=delete, args=(workers[0], root.id, ops.id)),
               threading.Thread(target=delete, args=(workers[1], ops.id, root.id))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [204, 409]
    with world.app.app_context():
        active = db.session.scalar(select(func.count()).select_from(User).where(
            User.role == "platform_admin", User.status == "active"))
    assert active == 1
    assert audit_actions(world.app, action="user.delete") == ["user.delete"]


def test_the_database_keeps_the_last_platform_admin_even_when_the_count_is_stale(world, client, monkeypatch):
    """The race, replayed in order: both disables counted two admins before either wrote.

    The second one must still be refused. On SQLite the row lock taken by the
    count does nothing; the guarded UPDATE decides there.
    """
    from admin_api.core.errors import Conflict
    from admin_api.users import service

    root, ops = world.user("root@example.test", "platform_admin"), world.user("ops@example.test", "platform_admin")
    monkeypatch.setattr(service, "_active_platform_admins", lambda: 2)  # what both requests counted
    assert client.delete(f"{USERS}/{ops.id}", headers=world.headers(root.email)).status_code == 204
    with world.app.test_request_context():
        late_actor = db.session.get(User, ops.id)  # ops's own request, which had passed authentication earlier:
        db.session.expunge(late_actor)
        late_actor.status = "active"  # as it was loaded then
        with pytest.raises(Conflict):
            service.delete_user(actor=late_actor, user_id=root.id)
    with world.app.app_context():
        assert db.session.get(User, root.id).status == "active"
    assert audit_actions(world.app, action="user.delete") == ["user.delete"]


def test_full_width_and_compatibility_forms_of_an_email_are_one_address(std, client):  # C12
    h = std["h"]["alice"]
    first = client.post(USERS, headers=h, json={"email": "ＡＢ@example.test", "display_name": "Ab", "role": "member"})
    assert first.status_code == 201 and first.json["email"] == "ab@example.test"
    again = client.post(USERS, headers=h, json={"email": "ab@example.test", "display_name": "Ab", "role": "member"})
    assert again.status_code == 409


@pytest.mark.parametrize("q", ["Über", "über", "ÜBER", "ärger"])
def test_search_folds_case_beyond_ascii_on_every_database(std, client, q):
    h = std["h"]["alice"]
    created = client.post(USERS, headers=h, json={"email": "ue@example.test", "display_name": "Überprüfung Ärger",
                                                  "role": "member"})
    assert created.status_code == 201
    found = client.get(USERS, headers=h, query_string={"q": q})
    assert [user["id"] for user in found.json] == [created.json["id"]]


def test_the_etag_changes_when_the_user_signs_in(std, client, world):
    path = f"{USERS}/{std['people']['amy'].id}"
    etag = client.get(path, headers=std["h"]["alice"]).headers["ETag"]
    world.login("amy@example.test")
    after = client.get(path, headers={**std["h"]["alice"], "If-None-Match": etag})
    assert after.status_code == 200 and after.headers["ETag"] != etag and after.json["last_login_at"]


def test_a_password_of_spaces_is_refused(std, client, app):
    response = client.post(USERS, headers=std["h"]["alice"],
                           json={"email": "sp@example.test", "display_name": "Sp", "role": "member", "password": " " * 12})
    assert response.status_code == 422 and "password" in response.json["errors"]


# --- restore ---------------------------------------------------------------------------------

def login(client, email: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def test_restore_brings_a_disabled_user_back(std, client, app):
    h, amy = std["h"], std["people"]["amy"]
    old_token = std["world"].login(amy.email)["access_token"]
    assert client.delete(f"{USERS}/{amy.id}", headers=h["alice"]).status_code == 204
    response = client.post(f"{USERS}/{amy.id}/restore", headers=h["alice"])
    assert response.status_code == 200, response.json
    assert response.json["status"] == "active" and response.json["disabled_at"] is None
    assert response.headers["ETag"] == client.get(f"{USERS}/{amy.id}", headers=h["alice"]).headers["ETag"]
    assert_no_secrets(response)
    assert login(client, amy.email).status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(old_token)).status_code == 401  # issued before the disable
    [event] = events_of(app, "user.restore")
    assert (event.actor_id, event.target_id, event.tenant_id) == (std["people"]["alice"].id, str(amy.id), std["a"].id)
    assert event.changes == {"before": {"status": "disabled"}, "after": {"status": "active"}}


def test_a_platform_admin_restores_a_platform_admin(std, client):
    ops = std["world"].user("ops@example.test", "platform_admin", status="disabled")
    assert client.post(f"{USERS}/{ops.id}/restore", headers=std["h"]["root"]).json["status"] == "active"


@pytest.mark.parametrize("who, target, status", [
    (None, "dan", 401),
    ("amy", "amy", 403),                        # a member: not its own restore either
    ("amy", "dan", 404),                        # members see only themselves
    ("bob", "dan", 404), ("alice", "ops", 404),  # another tenant; a platform admin
    ("alice", "missing", 404),
    ("alice", "amy", 409), ("root", "root", 409),  # not disabled
    ("alice", "stale", 412),
])
def test_restore_refusals_change_nothing(std, client, app, who, target, status):
    world = std["world"]
    people = {**std["people"], "dan": world.user("dan@example.test", "member", std["a"], status="disabled"),
              "ops": world.user("ops@example.test", "platform_admin", status="disabled")}
    user_id = people["dan"].id if target == "stale" else people[target].id if target in people else uuid.uuid4()
    headers = {**std["h"].get(who, {}), **({"If-Match": '"stale"'} if target == "stale" else {})}
    before = db_state(app)
    assert_refused(app, before, client.post(f"{USERS}/{user_id}/restore", headers=headers), status)


def test_two_restores_of_one_user_make_one_change(std, make_app, app):
    dan = std["world"].user("dan@example.test", "member", std["a"], status="disabled")
    headers = std["h"]["alice"]
    statuses = in_threads(2, make_app, lambda c: c.post(f"{USERS}/{dan.id}/restore", headers=headers).status_code)
    assert sorted(statuses) == [200, 409]
    assert audit_actions(app, action="user.restore") == ["user.restore"]


# --- reset password (by an admin) ------------------------------------------------------------

NEW_PASSWORD = "a brand new passphrase"


def test_a_temporary_password_opens_only_the_password_change(std, client, app):
    h, amy = std["h"], std["people"]["amy"]
    before = std["world"].login(amy.email)
    response = client.post(f"{USERS}/{amy.id}/reset-password", headers=h["alice"],
                           json={"new_password": NEW_PASSWORD, "temporary": True})
    assert response.status_code == 200, response.json
    assert set(response.json) == {"user"} and response.json["user"]["must_change_password"] is True
    assert_no_secrets(response)
    assert NEW_PASSWORD not in response.get_data(as_text=True)
    for token in (before["access_token"], before["refresh_token"]):  # every earlier token: dead at once
        assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(before["refresh_token"])).status_code == 401
    assert login(client, amy.email).status_code == 401  # the old password is gone
    signed_in = login(client, amy.email, NEW_PASSWORD)
    assert signed_in.status_code == 200 and signed_in.json["user"]["must_change_password"] is True
    limited = bearer(signed_in.json["access_token"])
    assert client.get("/api/v1/auth/me", headers=limited).status_code == 200
    refused = client.get(f"{USERS}/{amy.id}", headers=limited)
    assert refused.status_code == 403 and "change your password" in refused.json["message"]
    changed = client.post("/api/v1/auth/change-password", headers=limited,
                          json={"current_password": NEW_PASSWORD, "new_password": "amy's own passphrase"})
    assert changed.status_code == 204
    assert client.get("/api/v1/auth/me", headers=limited).status_code == 401
    final = login(client, amy.email, "amy's own passphrase")
    assert final.json["user"]["must_change_password"] is False
    assert client.get(f"{USERS}/{amy.id}", headers=bearer(final.json["access_token"])).status_code == 200
    [event] = events_of(app, "user.reset_password")
    assert event.actor_id == std["people"]["alice"].id and event.target_id == str(amy.id)
    assert event.changes == {"method": "password", "temporary": True}


def test_a_permanent_password_signs_in_fully(std, client):
    amy = std["people"]["amy"]
    response = client.post(f"{USERS}/{amy.id}/reset-password", headers=std["h"]["root"],
                           json={"new_password": NEW_PASSWORD, "temporary": False})
    assert response.status_code == 200 and response.json["user"]["must_change_password"] is False
    token = login(client, amy.email, NEW_PASSWORD).json["access_token"]
    assert client.get(f"{USERS}/{amy.id}", headers=bearer(token)).status_code == 200


def test_temporary_is_the_default(std, client):
    amy = std["people"]["amy"]
    response = client.post(f"{USERS}/{amy.id}/reset-password", headers=std["h"]["alice"], json={"new_password": NEW_PASSWORD})
    assert response.json["user"]["must_change_password"] is True


def test_an_empty_body_issues_a_one_time_token_stored_as_a_digest(std, client, app):
    from datetime import UTC, datetime, timedelta

    h, amy = std["h"], std["people"]["amy"]
    earlier = std["world"].login(amy.email)["access_token"]
    response = client.post(f"{USERS}/{amy.id}/reset-password", headers=h["alice"], json={})
    assert response.status_code == 200, response.json
    assert set(response.json) == {"user", "reset_token", "expires_at"}
    token = response.json["reset_token"]
    expires = datetime.fromisoformat(response.json["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    with app.app_context():
        [row] = db.session.scalars(select(PasswordResetToken)).all()
        assert row.user_id == amy.id and row.token_digest == token_digest(token) != token
        stored = str([db.session.execute(select(table)).all() for table in (User.__table__, PasswordResetToken.__table__)])
    assert token not in stored
    assert client.get("/api/v1/auth/me", headers=bearer(earlier)).status_code == 401  # sessions revoked
    assert login(client, amy.email).status_code == 200  # the current password works until the reset is used
    assert client.get(USERS, headers=bearer(token)).status_code == 401  # C07: not a bearer token
    [event] = events_of(app, "user.reset_password")
    assert event.changes["method"] == "reset_token" and token not in str(event.changes)
    assert token_digest(token) not in str(event.changes)
    again = client.get(f"{USERS}/{amy.id}", headers=h["alice"])
    assert "reset_token" not in again.json  # shown once


def test_no_body_at_all_issues_a_token_too(std, client):
    response = client.post(f"{USERS}/{std['people']['amy'].id}/reset-password", headers=std["h"]["alice"])
    assert response.status_code == 200 and response.json["reset_token"]


def test_the_reset_token_lifetime_is_configurable(std, make_app):
    from datetime import UTC, datetime, timedelta

    client = make_app(RESET_TOKEN_TTL=120).test_client()
    response = client.post(f"{USERS}/{std['people']['amy'].id}/reset-password", headers=std["h"]["alice"], json={})
    expires = datetime.fromisoformat(response.json["expires_at"].replace("Z", "+00:00"))
    assert timedelta(seconds=100) < expires - datetime.now(UTC) <= timedelta(seconds=120)


def test_a_platform_admin_resets_a_platform_admin(std, client):
    ops = std["world"].user("ops@example.test", "platform_admin")
    response = client.post(f"{USERS}/{ops.id}/reset-password", headers=std["h"]["root"], json={"new_password": NEW_PASSWORD})
    assert response.status_code == 200
    assert login(client, ops.email, NEW_PASSWORD).status_code == 200


@pytest.mark.parametrize("who, target, body, status", [
    (None, "amy", {}, 401),
    ("amy", "amy", {}, 403),                     # members do not reset, not even themselves
    ("amy", "alice", {}, 404),
    ("bob", "amy", {}, 404), ("alice", "bea", {}, 404),
    ("alice", "root", {}, 404),                  # only platform admins reset a platform admin
    ("alice", "missing", {}, 404),
    ("alice", "dan", {}, 409), ("alice", "dan", {"new_password": NEW_PASSWORD}, 409),  # disabled: restore first
    ("alice", "amy", {"new_password": "short"}, 422),
    ("alice", "amy", {"new_password": "password1234"}, 422),        # common
    ("alice", "amy", {"new_password": "AMY@example.test"}, 422),    # the email
    ("alice", "amy", {"new_password": "x" * 257}, 422),
    ("alice", "amy", {"new_password": None}, 422),
    ("alice", "amy", {"temporary": True}, 422),                     # temporary what?
    ("alice", "amy", {"new_password": NEW_PASSWORD, "temporary": "maybe"}, 422),
    ("alice", "amy", {"password": NEW_PASSWORD}, 422),              # unknown field
    ("alice", "amy", {"must_change_password": False}, 422),
])
def test_reset_refusals_change_nothing(std, client, app, who, target, body, status):
    people = {**std["people"], "dan": std["world"].user("dan@example.test", "member", std["a"], status="disabled")}
    user_id = people[target].id if target in people else uuid.uuid4()
    before = db_state(app)
    response = client.post(f"{USERS}/{user_id}/reset-password", headers=std["h"].get(who, {}), json=body)
    assert_refused(app, before, response, status)
    assert "reset_token" not in response.json
    if status == 422:
        assert set(response.json["errors"]) <= set(body) | {"new_password"}


def test_reset_password_honours_if_match(std, client, app):
    amy = std["people"]["amy"]
    before = db_state(app)
    stale = client.post(f"{USERS}/{amy.id}/reset-password", headers={**std["h"]["alice"], "If-Match": '"stale"'},
                        json={"new_password": NEW_PASSWORD, "temporary": False})
    assert_refused(app, before, stale, 412)
    etag = client.get(f"{USERS}/{amy.id}", headers=std["h"]["alice"]).headers["ETag"]
    fresh = client.post(f"{USERS}/{amy.id}/reset-password", headers={**std["h"]["alice"], "If-Match": etag}, json={})
    assert fresh.status_code == 200 and fresh.json["reset_token"]
