"""Tenants over HTTP: list, create, read, rename, soft delete and restore (C02, C03, C10, C16)."""
import json
import uuid

import pytest
from sqlalchemy import func, select

from admin_api.audit.models import AuditEvent
from admin_api.extensions import db
from admin_api.tenants.models import Tenant
from admin_api.users.models import User
from tests.conftest import audit_actions, events_of, in_threads, login_status, new_id

TENANTS = "/api/v1/tenants"
USERS = "/api/v1/users"
FIELDS = {"id", "name", "slug", "status", "created_at", "updated_at", "deleted_at"}


def db_state(app) -> tuple:
    """Every tenant row, every user's version, and the number of audit events."""
    with app.app_context():
        rows = db.session.execute(select(Tenant.id, Tenant.name, Tenant.slug, Tenant.status, Tenant.version,
                                         Tenant.deleted_at, Tenant.tokens_valid_after)).all()
        users = dict(db.session.execute(select(User.id, User.version)).all())
        events = db.session.scalar(select(func.count()).select_from(AuditEvent))
        return {row.id: tuple(row) for row in rows}, users, events


def assert_refused(app, before, response, status: int) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json and response.json["code"] == status
    assert db_state(app) == before


def slugs(response) -> list[str]:
    return [tenant["slug"] for tenant in response.json]


# --- list ------------------------------------------------------------------------------------

@pytest.mark.parametrize("who, expected", [
    ("root", {"tenant-a", "tenant-b"}),
    ("alice", {"tenant-a"}), ("amy", {"tenant-a"}), ("bob", {"tenant-b"}), ("bea", {"tenant-b"}),
])
def test_everyone_lists_only_the_tenants_it_may_see(std, client, who, expected):
    response = client.get(TENANTS, headers=std["h"][who])
    assert response.status_code == 200
    assert set(slugs(response)) == expected
    assert response.headers["X-Total-Count"] == str(len(expected))
    assert json.loads(response.headers["X-Pagination"])["total"] == len(expected)
    assert all(set(t) == FIELDS for t in response.json)


def test_list_needs_a_token(client):
    response = client.get(TENANTS)
    assert response.status_code == 401 and response.json["code"] == 401


@pytest.fixture
def many(std):
    """tenant-a, tenant-b and four more, two of them deleted, created in this order."""
    for slug, status in [("delta", "active"), ("alpha", "deleted"), ("charlie", "active"), ("bravo", "deleted")]:
        std["world"].tenant(slug, name=f"{slug.title()} Corp", status=status)
    return {**std, "created": ["tenant-a", "tenant-b", "delta", "alpha", "charlie", "bravo"]}


@pytest.mark.parametrize("query, expected", [
    ({"status": "deleted"}, {"alpha", "bravo"}),
    ({"status": "active"}, {"tenant-a", "tenant-b", "delta", "charlie"}),
    ({"q": "CORP"}, {"delta", "alpha", "charlie", "bravo"}),   # name, any case
    ({"q": "tenant-"}, {"tenant-a", "tenant-b"}),              # slug
    ({"q": "corp", "status": "active"}, {"delta", "charlie"}),
    ({"q": "%"}, set()),
])
def test_filters(many, client, query, expected):
    response = client.get(TENANTS, headers=many["h"]["root"], query_string=query)
    assert response.status_code == 200
    assert set(slugs(response)) == expected
    assert response.headers["X-Total-Count"] == str(len(expected))


def test_a_tenant_admin_cannot_filter_its_way_to_other_tenants(many, client):
    response = client.get(TENANTS, headers=many["h"]["alice"], query_string={"q": "corp"})
    assert response.status_code == 200 and response.json == []
    assert response.headers["X-Total-Count"] == "0"


@pytest.mark.parametrize("field", ["name", "slug", "created_at"])
def test_sort_ascending_and_descending(many, client, field):
    h = many["h"]["root"]
    ascending = client.get(TENANTS, headers=h, query_string={"sort": field}).json
    descending = client.get(TENANTS, headers=h, query_string={"sort": f"-{field}"}).json
    assert [t[field] for t in ascending] == sorted(t[field] for t in ascending)
    assert [t["id"] for t in descending] == [t["id"] for t in reversed(ascending)]
    if field == "created_at":
        assert [t["slug"] for t in ascending] == many["created"]
        assert client.get(TENANTS, headers=h).json == descending  # newest first by default


def test_pages(many, client):
    seen = []
    for page, size in [(1, 4), (2, 2)]:
        response = client.get(TENANTS, headers=many["h"]["root"], query_string={"page": page, "page_size": 4, "sort": "slug"})
        assert len(response.json) == size and response.headers["X-Total-Count"] == "6"
        meta = json.loads(response.headers["X-Pagination"])
        assert (meta["page"], meta["total_pages"], meta["last_page"]) == (page, 2, 2)
        seen += slugs(response)
    assert seen == sorted(many["created"])
    beyond = client.get(TENANTS, headers=many["h"]["root"], query_string={"page": 3, "page_size": 4})
    assert beyond.status_code == 200 and beyond.json == [] and beyond.headers["X-Total-Count"] == "6"


@pytest.mark.parametrize("query, field", [
    ({"tenant_id": "x"}, "tenant_id"), ({"stauts": "active"}, "stauts"), ({"status": "gone"}, "status"),
    ({"sort": "status"}, "sort"), ({"sort": "-id"}, "sort"), ({"page_size": "101"}, "page_size"),
    ({"page": "-1"}, "page"), ({"q": ""}, "q"),
])
def test_bad_or_unknown_query_arguments_are_422(std, client, query, field):  # C02
    response = client.get(TENANTS, headers=std["h"]["alice"], query_string=query)
    assert response.status_code == 422
    assert field in response.json["errors"]


# --- create ----------------------------------------------------------------------------------

def test_platform_admin_creates_a_tenant(std, client, app):
    response = client.post(TENANTS, headers={**std["h"]["root"], "X-Request-ID": "req-tenant-1"},
                           json={"name": "Acme Inc.", "slug": "acme"})
    assert response.status_code == 201, response.json
    body = response.json
    assert set(body) == FIELDS
    assert (body["name"], body["slug"], body["status"], body["deleted_at"]) == ("Acme Inc.", "acme", "active", None)
    assert response.headers["Location"].endswith(f"{TENANTS}/{body['id']}")
    fetched = client.get(response.headers["Location"], headers=std["h"]["root"])
    assert fetched.json == body and fetched.headers["ETag"] == response.headers["ETag"]
    [event] = events_of(app, "tenant.create")
    assert event.actor_id == std["people"]["root"].id and event.actor_email == "root@example.test"
    assert (event.target_type, event.target_id, event.tenant_id) == ("tenant", body["id"], uuid.UUID(body["id"]))
    assert event.request_id == "req-tenant-1"
    assert event.changes == {"after": {"name": "Acme Inc.", "slug": "acme", "status": "active"}}


@pytest.mark.parametrize("who, body, status", [
    (None, {}, 401),
    ("alice", {}, 403), ("amy", {}, 403),
    ("root", {"slug": "Acme"}, 422), ("root", {"slug": "a"}, 422), ("root", {"slug": "-acme"}, 422),
    ("root", {"slug": "acme_inc"}, 422), ("root", {"slug": "a" * 64}, 422), ("root", {"slug": None}, 422),
    ("root", {"name": ""}, 422), ("root", {"name": "x" * 201}, 422),
    ("root", {"status": "deleted"}, 422), ("root", {"id": "ID"}, 422), ("root", {"deleted_at": None}, 422),
    ("root", {"slug": "tenant-a"}, 409),
])
def test_create_refusals_change_nothing(std, client, app, who, body, status):
    body = {"name": "Acme", "slug": "acme", **{k: new_id() if v == "ID" else v for k, v in body.items()}}
    before = db_state(app)
    response = client.post(TENANTS, headers=std["h"].get(who, {}), json=body)
    assert_refused(app, before, response, status)
    if status in (409, 422):
        assert set(response.json["errors"]) <= set(body)


def test_a_deleted_tenant_keeps_its_slug(std, client, app):
    std["world"].tenant("gone", status="deleted")
    before = db_state(app)
    response = client.post(TENANTS, headers=std["h"]["root"], json={"name": "New Gone", "slug": "gone"})
    assert_refused(app, before, response, 409)
    assert "slug" in response.json["errors"]


def test_requests_after_a_409_succeed(std, client, app):  # C16
    assert client.post(TENANTS, headers=std["h"]["root"], json={"name": "Dup", "slug": "tenant-b"}).status_code == 409
    assert client.get(TENANTS, headers=std["h"]["root"]).status_code == 200
    assert client.post(TENANTS, headers=std["h"]["root"], json={"name": "Fresh", "slug": "fresh"}).status_code == 201
    assert audit_actions(app, action="tenant.create") == ["tenant.create"]


# --- read ------------------------------------------------------------------------------------

@pytest.mark.parametrize("who, target, status", [
    ("root", "a", 200), ("root", "b", 200), ("alice", "a", 200), ("amy", "a", 200), ("bea", "b", 200),
    ("alice", "b", 404), ("bob", "a", 404), ("amy", "b", 404), ("root", "missing", 404), (None, "a", 401),
])
def test_read_one_tenant(std, client, who, target, status):
    tenant_id = std[target].id if target in ("a", "b") else uuid.uuid4()
    response = client.get(f"{TENANTS}/{tenant_id}", headers=std["h"].get(who, {}))
    assert response.status_code == status and response.is_json
    if status == 200:
        assert response.json["id"] == str(tenant_id) and set(response.json) == FIELDS
        assert response.headers["ETag"]
    if status == 404:
        assert response.json["message"] == "Tenant not found."


def test_if_none_match_current_is_304(std, client):  # C03
    url = f"{TENANTS}/{std['a'].id}"
    etag = client.get(url, headers=std["h"]["alice"]).headers["ETag"]
    cached = client.get(url, headers={**std["h"]["alice"], "If-None-Match": etag})
    assert cached.status_code == 304 and cached.get_data() == b""


# --- rename ----------------------------------------------------------------------------------

def test_platform_admin_renames_a_tenant(std, client, app):
    url = f"{TENANTS}/{std['a'].id}"
    old = client.get(url, headers=std["h"]["root"])
    response = client.patch(url, headers={**std["h"]["root"], "If-Match": old.headers["ETag"]}, json={"name": "Tenant Alpha"})
    assert response.status_code == 200, response.json
    assert response.json["name"] == "Tenant Alpha" and response.json["slug"] == "tenant-a"
    assert response.json["updated_at"] > old.json["updated_at"]
    assert response.headers["ETag"] != old.headers["ETag"]
    assert client.get(url, headers=std["h"]["alice"]).json["name"] == "Tenant Alpha"
    [event] = events_of(app, "tenant.update")
    assert event.actor_id == std["people"]["root"].id and event.target_id == str(std["a"].id)
    assert event.tenant_id == std["a"].id  # so tenant-a's admin sees it
    assert event.changes == {"before": {"name": "Tenant-A"}, "after": {"name": "Tenant Alpha"}}


def test_same_name_changes_nothing_and_writes_no_event(std, client, app):
    before = db_state(app)
    response = client.patch(f"{TENANTS}/{std['a'].id}", headers=std["h"]["root"], json={"name": "Tenant-A"})
    assert response.status_code == 200 and db_state(app) == before


def test_stale_if_match_is_412_and_current_one_wins(std, client, app):  # C03
    url, h = f"{TENANTS}/{std['a'].id}", std["h"]["root"]
    first = client.get(url, headers=h).headers["ETag"]
    before = db_state(app)
    assert_refused(app, before, client.patch(url, headers={**h, "If-Match": '"stale"'}, json={"name": "X"}), 412)
    assert client.patch(url, headers={**h, "If-Match": first}, json={"name": "Y"}).status_code == 200
    before = db_state(app)
    assert_refused(app, before, client.patch(url, headers={**h, "If-Match": first}, json={"name": "Z"}), 412)
    assert client.get(url, headers=h).json["name"] == "Y"


@pytest.mark.parametrize("who, target, body, status", [
    (None, "a", {"name": "X"}, 401),
    ("alice", "a", {"name": "X"}, 403),   # a tenant admin reads its tenant but does not rename it
    ("amy", "a", {"name": "X"}, 403),
    ("alice", "b", {"name": "X"}, 404), ("bob", "a", {"name": "X"}, 404), ("root", "missing", {"name": "X"}, 404),
    ("root", "a", {"slug": "renamed"}, 422),   # the slug is immutable
    ("root", "a", {"status": "deleted"}, 422), ("root", "a", {"id": "x"}, 422),
    ("root", "a", {"name": ""}, 422), ("root", "a", {"name": 5}, 422),
])
def test_rename_refusals_change_nothing(std, client, app, who, target, body, status):
    tenant_id = std[target].id if target in ("a", "b") else uuid.uuid4()
    before = db_state(app)
    response = client.patch(f"{TENANTS}/{tenant_id}", headers=std["h"].get(who, {}), json=body)
    assert_refused(app, before, response, status)
    if status == 422:
        assert set(response.json["errors"]) == set(body)


# --- soft delete and restore -------------------------------------------------------------------

def test_platform_admin_deletes_a_tenant_and_its_users_are_locked_out(std, client, app):
    h, url = std["h"], f"{TENANTS}/{std['a'].id}"
    etag = client.get(url, headers=h["root"]).headers["ETag"]
    response = client.delete(url, headers={**h["root"], "If-Match": etag})
    assert response.status_code == 204 and response.get_data() == b""
    tenant = client.get(url, headers=h["root"]).json
    assert tenant["status"] == "deleted" and tenant["deleted_at"] is not None
    assert slugs(client.get(TENANTS, headers=h["root"], query_string={"status": "deleted"})) == ["tenant-a"]
    assert set(slugs(client.get(TENANTS, headers=h["root"]))) == {"tenant-a", "tenant-b"}  # still listed
    for who in ("alice", "amy"):  # every token of the tenant: refused on the very next request
        assert client.get("/api/v1/auth/me", headers=h[who]).status_code == 401
        assert login_status(client, f"{who}@example.test") == 401
    assert client.get("/api/v1/auth/me", headers=h["bob"]).status_code == 200  # another tenant: untouched
    [event] = events_of(app, "tenant.delete")
    assert (event.actor_id, event.target_id, event.tenant_id) == (std["people"]["root"].id, str(std["a"].id), std["a"].id)
    assert event.changes == {"before": {"status": "active"}, "after": {"status": "deleted"}}


@pytest.mark.parametrize("who, target, status", [
    (None, "a", 401),
    ("alice", "a", 403), ("amy", "a", 403),       # its own tenant: read, never delete
    ("alice", "b", 404), ("bob", "a", 404), ("amy", "b", 404), ("root", "missing", 404),
    ("root", "stale", 412),
])
def test_delete_refusals_change_nothing(std, client, app, who, target, status):
    tenant_id = std["a"].id if target == "stale" else std[target].id if target in ("a", "b") else uuid.uuid4()
    headers = {**std["h"].get(who, {}), **({"If-Match": '"stale"'} if target == "stale" else {})}
    before = db_state(app)
    assert_refused(app, before, client.delete(f"{TENANTS}/{tenant_id}", headers=headers), status)
    assert login_status(client, "alice@example.test") == 200


def test_deleting_a_deleted_tenant_is_409(std, client, app):
    url = f"{TENANTS}/{std['a'].id}"
    assert client.delete(url, headers=std["h"]["root"]).status_code == 204
    before = db_state(app)
    assert_refused(app, before, client.delete(url, headers=std["h"]["root"]), 409)
    assert audit_actions(app, action="tenant.delete") == ["tenant.delete"]


def test_restore_lets_users_sign_in_again_and_old_tokens_stay_dead(std, client, app):
    h, url = std["h"], f"{TENANTS}/{std['a'].id}"
    assert client.delete(url, headers=h["root"]).status_code == 204
    response = client.post(f"{url}/restore", headers=h["root"])
    assert response.status_code == 200, response.json
    assert response.json["status"] == "active" and response.json["deleted_at"] is None
    assert set(response.json) == FIELDS
    assert response.headers["ETag"] == client.get(url, headers=h["root"]).headers["ETag"]
    assert client.get("/api/v1/auth/me", headers=h["alice"]).status_code == 401   # issued before the delete
    assert login_status(client, "alice@example.test") == 200
    [event] = events_of(app, "tenant.restore")
    assert event.changes == {"before": {"status": "deleted"}, "after": {"status": "active"}}
    assert event.tenant_id == std["a"].id


@pytest.mark.parametrize("who, target, status", [
    (None, "gone", 401),
    ("alice", "a", 403), ("amy", "a", 403),          # authorization first, whatever the state
    ("alice", "gone", 404), ("bob", "a", 404), ("root", "missing", 404),
    ("root", "a", 409),                               # not deleted
    ("root", "stale", 412),
])
def test_restore_refusals_change_nothing(std, client, app, who, target, status):
    gone = std["world"].tenant("gone", status="deleted")
    ids = {"a": std["a"].id, "gone": gone.id, "stale": gone.id, "missing": uuid.uuid4()}
    headers = {**std["h"].get(who, {}), **({"If-Match": '"stale"'} if target == "stale" else {})}
    before = db_state(app)
    assert_refused(app, before, client.post(f"{TENANTS}/{ids[target]}/restore", headers=headers), status)


def test_restore_with_the_current_etag(std, client):
    url = f"{TENANTS}/{std['a'].id}"
    assert client.delete(url, headers=std["h"]["root"]).status_code == 204
    etag = client.get(url, headers=std["h"]["root"]).headers["ETag"]
    response = client.post(f"{url}/restore", headers={**std["h"]["root"], "If-Match": etag})
    assert response.status_code == 200 and response.headers["ETag"] != etag


def test_the_users_of_a_deleted_tenant_are_frozen_until_it_is_restored(std, client, app):
    h, a = std["h"], std["a"]
    dan = std["world"].user("dan@example.test", "member", a, status="disabled")
    amy = std["people"]["amy"]
    assert client.delete(f"{TENANTS}/{a.id}", headers=h["root"]).status_code == 204
    refusals = [
        ("post", USERS, {"email": "new@example.test", "display_name": "New", "role": "member", "tenant_id": str(a.id)}),
        ("patch", f"{USERS}/{amy.id}", {"display_name": "Renamed"}),
        ("post", f"{USERS}/{dan.id}/restore", None),
        ("post", f"{USERS}/{amy.id}/reset-password", {}),
        ("post", f"{USERS}/{amy.id}/reset-password", {"new_password": "a brand new passphrase"}),
    ]
    for method, path, body in refusals:
        before = db_state(app)
        response = getattr(client, method)(path, headers=h["root"], json=body)
        assert_refused(app, before, response, 409)
        assert "restore it first" in response.json["message"]
    # Disabling only takes access away: allowed, so that restoring the tenant will not bring that user back.
    assert client.delete(f"{USERS}/{amy.id}", headers=h["root"]).status_code == 204
    assert client.post(f"{TENANTS}/{a.id}/restore", headers=h["root"]).status_code == 200
    assert client.post(f"{USERS}/{dan.id}/restore", headers=h["root"]).status_code == 200
    assert client.post(USERS, headers=h["root"], json={
        "email": "new@example.test", "display_name": "New", "role": "member", "tenant_id": str(a.id)}).status_code == 201


def test_restoring_a_tenant_does_not_resurrect_users_disabled_on_their_own(world, client, app):  # C10
    a = world.tenant("tenant-a")
    root = world.headers(world.user("root@example.test", "platform_admin").email)
    u1, u2, u3 = (world.user(f"u{n}@example.test", "member", a) for n in (1, 2, 3))
    assert client.delete(f"{USERS}/{u1.id}", headers=root).status_code == 204
    assert client.delete(f"{TENANTS}/{a.id}", headers=root).status_code == 204
    for user in (u1, u2, u3):
        assert login_status(client, user.email) == 401
    before = db_state(app)
    assert_refused(app, before, client.post(f"{USERS}/{u1.id}/restore", headers=root), 409)
    assert client.post(f"{TENANTS}/{a.id}/restore", headers=root).status_code == 200
    assert [login_status(client, user.email) for user in (u1, u2, u3)] == [401, 200, 200]
    assert client.get(f"{USERS}/{u1.id}", headers=root).json["status"] == "disabled"
    log = client.get("/api/v1/audit-events", headers=root, query_string={"page_size": 100}).json
    steps = [(e["action"], e["target_id"]) for e in reversed(log) if e["action"].startswith(("user.", "tenant."))]
    assert steps == [("user.delete", str(u1.id)), ("tenant.delete", str(a.id)), ("tenant.restore", str(a.id))]
    assert client.post(f"{USERS}/{u1.id}/restore", headers=root).status_code == 200
    assert login_status(client, u1.email) == 200


def test_two_deletes_of_one_tenant_make_one_change(std, make_app, app):
    url, headers = f"{TENANTS}/{std['a'].id}", std["h"]["root"]
    statuses = in_threads(2, make_app, lambda c: c.delete(url, headers=headers).status_code)
    assert sorted(statuses) == [204, 409]
    assert audit_actions(app, action="tenant.delete") == ["tenant.delete"]


def test_the_deleted_check_reads_the_database_not_a_stale_copy(std, app):
    """A change that loaded the tenant before a concurrent delete committed is still refused."""
    from admin_api.tenants import service
    from admin_api.users import service as users

    with app.test_request_context():
        actor = db.session.get(User, std["people"]["root"].id)
        tenant = service.get_tenant(actor=actor, tenant_id=std["a"].id)
        assert tenant.status == "active"  # what this request saw
        other = app.test_client()  # another request deletes it now
        assert other.delete(f"{TENANTS}/{std['a'].id}", headers=std["h"]["root"]).status_code == 204
        with pytest.raises(service.TenantDeleted):
            users.create_user(actor=actor, email="late@example.test", display_name="Late", role="member",
                              tenant_id=tenant.id)
        db.session.rollback()
    assert audit_actions(app, action="user.create") == []
