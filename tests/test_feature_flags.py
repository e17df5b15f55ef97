"""Feature flags over HTTP: list, create, read, change, delete, per-tenant overrides, evaluation."""
import json
import threading

import pytest
from sqlalchemy import func, select

from admin_api.audit.models import AuditEvent
from admin_api.extensions import db
from admin_api.feature_flags import service
from admin_api.feature_flags.evaluation import in_rollout
from admin_api.feature_flags.models import FeatureFlag, FeatureFlagOverride
from tests.conftest import audit_actions, events_of, new_id

FLAGS = "/api/v1/feature-flags"
EVALUATE = f"{FLAGS}/evaluate"
FIELDS = {"key", "description", "enabled", "rollout_percentage", "tenant_overrides", "created_at", "updated_at",
          "version"}


def db_state(app) -> tuple:
    """Every flag row, every override row, and the number of audit events."""
    with app.app_context():
        flags = db.session.execute(select(FeatureFlag.key, FeatureFlag.description, FeatureFlag.enabled,
                                          FeatureFlag.rollout_basis_points, FeatureFlag.version)).all()
        overrides = db.session.execute(select(FeatureFlagOverride.flag_id, FeatureFlagOverride.tenant_id,
                                              FeatureFlagOverride.enabled)).all()
        events = db.session.scalar(select(func.count()).select_from(AuditEvent))
        return sorted(map(tuple, flags)), sorted(map(tuple, overrides)), events


def assert_refused(app, before, response, status: int) -> None:
    """A JSON error with the status, and no row or audit event changed."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json and response.json["code"] == status
    assert db_state(app) == before


def create(client, headers, key: str, **fields):
    response = client.post(FLAGS, headers=headers, json={"key": key, **fields})
    assert response.status_code == 201, response.json
    return response


@pytest.fixture
def flagged(std, client):
    """std plus a deleted tenant-c and three flags; `beta.search` has overrides for tenant-a (off) and tenant-b (on)."""
    a, b = std["a"], std["b"]
    c = std["world"].tenant("tenant-c", status="deleted")
    root = std["h"]["root"]
    create(client, root, "beta.search", description="Search v2", enabled=True,
           tenant_overrides={str(a.id): False, str(b.id): True})
    create(client, root, "new-checkout", description="The new checkout", enabled=True, rollout_percentage=50)
    create(client, root, "dark_mode", description="Dark theme")
    return {**std, "c": c}


# --- create ----------------------------------------------------------------------------------

def test_platform_admin_creates_a_flag(std, client, app):
    a = std["a"]
    response = client.post(FLAGS, headers={**std["h"]["root"], "X-Request-ID": "req-flag-1"}, json={
        "key": "new.checkout_v2-x", "description": "  New checkout\nflow  ", "enabled": True,
        "rollout_percentage": 12.5, "tenant_overrides": {str(a.id): False}})
    assert response.status_code == 201, response.json
    body = response.json
    assert set(body) == FIELDS
    assert (body["key"], body["description"], body["enabled"], body["rollout_percentage"], body["version"]) == (
        "new.checkout_v2-x", "New checkout\nflow", True, 12.5, 1)
    assert body["tenant_overrides"] == {str(a.id): False}
    assert response.headers["Location"].endswith(f"{FLAGS}/new.checkout_v2-x")
    fetched = client.get(response.headers["Location"], headers=std["h"]["root"])
    assert fetched.json == body and fetched.headers["ETag"] == response.headers["ETag"]
    [event] = events_of(app, "flag.create")
    assert (event.actor_id, event.tenant_id, event.target_type, event.target_id, event.request_id) == (
        std["people"]["root"].id, None, "feature_flag", "new.checkout_v2-x", "req-flag-1")
    assert event.changes == {"after": {"key": "new.checkout_v2-x", "description": "New checkout\nflow", "enabled": True,
                                       "rollout_percentage": 12.5, "tenant_overrides": {str(a.id): False}}}


def test_create_defaults_to_an_off_flag_without_rollout(std, client):
    body = create(client, std["h"]["root"], "plain").json
    assert (body["description"], body["enabled"], body["rollout_percentage"], body["tenant_overrides"]) == (
        "", False, None, {})


def test_rollout_percentages_to_the_hundredth(std, client, subtests):
    for n, (sent, shown) in enumerate([(0, 0), (100, 100), (50.0, 50), (0.01, 0.01), (99.99, 99.99), (33.33, 33.33),
                                       (12.3, 12.3)]):
        with subtests.test(sent=sent):
            body = create(client, std["h"]["root"], f"rollout{n}", enabled=True, rollout_percentage=sent).json
            assert body["rollout_percentage"] == shown


CREATE_REFUSALS = [  # (who, body, status); one world for them all: each must leave it as it was
    (None, {}, 401), ("alice", {}, 403), ("amy", {}, 403),
    ("root", {"key": "A"}, 422), ("root", {"key": "a"}, 422), ("root", {"key": "1flag"}, 422),
    ("root", {"key": "_flag"}, 422), ("root", {"key": "my flag"}, 422), ("root", {"key": "flag/x"}, 422),
    ("root", {"key": "f" * 65}, 422), ("root", {"key": "flag\n"}, 422), ("root", {"key": "évian"}, 422),
    ("root", {"key": "evaluate"}, 422), ("root", {"key": None}, 422), ("root", {"key": 5}, 422),
    ("root", {"description": "x" * 1001}, 422), ("root", {"description": "bad\u202eone"}, 422),
    ("root", {"description": None}, 422),
    ("root", {"enabled": "true"}, 422), ("root", {"enabled": 1}, 422), ("root", {"enabled": None}, 422),
    ("root", {"rollout_percentage": 100.01}, 422), ("root", {"rollout_percentage": -1}, 422),
    ("root", {"rollout_percentage": 12.345}, 422), ("root", {"rollout_percentage": "50"}, 422),
    ("root", {"rollout_percentage": True}, 422), ("root", {"rollout_percentage": 1e300}, 422),
    ("root", {"rollout_percentage": 10**400}, 422), ("root", {"rollout_percentage": float("nan")}, 422),
    ("root", {"tenant_overrides": {"not-a-uuid": True}}, 422), ("root", {"tenant_overrides": {"A": "yes"}}, 422),
    ("root", {"tenant_overrides": {"A": 1}}, 422), ("root", {"tenant_overrides": {"MISSING": True}}, 422),
    ("root", {"tenant_overrides": {"C": True}}, 422), ("root", {"tenant_overrides": ["A"]}, 422),
    ("root", {"id": "ID"}, 422), ("root", {"version": 3}, 422), ("root", {"created_at": "2026-01-01T00:00:00Z"}, 422),
    ("root", {"key": "beta.search"}, 409),
]


def test_create_refusals_change_nothing(flagged, client, app, subtests):
    tenants = {"A": str(flagged["a"].id), "C": str(flagged["c"].id), "MISSING": new_id()}
    for who, body, status in CREATE_REFUSALS:
        with subtests.test(who=who, body=body):
            body = {"key": "fresh", **body}
            if isinstance(body.get("tenant_overrides"), dict):
                body["tenant_overrides"] = {tenants.get(k, k): v for k, v in body["tenant_overrides"].items()}
            if body.get("id") == "ID":
                body["id"] = new_id()
            before = db_state(app)
            response = client.post(FLAGS, headers=flagged["h"].get(who, {}), json=body)
            assert_refused(app, before, response, status)
            if status in (409, 422):
                assert set(response.json["errors"]) <= set(body)


def test_unknown_and_deleted_tenants_are_named_in_the_error(flagged, client):
    missing = new_id()
    response = client.post(FLAGS, headers=flagged["h"]["root"], json={"key": "fresh", "tenant_overrides": {
        str(flagged["a"].id): True, missing: True, str(flagged["c"].id): False}})
    assert response.status_code == 422
    assert response.json["errors"] == {"tenant_overrides": {missing: ["No such tenant."],
                                                            str(flagged["c"].id): ["The tenant is deleted."]}}


def test_the_database_refuses_a_duplicate_key_the_check_missed(flagged, client, app, monkeypatch):
    monkeypatch.setattr(service, "_refuse_taken_key", lambda key: None)
    before = db_state(app)
    assert_refused(app, before, client.post(FLAGS, headers=flagged["h"]["root"], json={"key": "beta.search"}), 409)
    assert client.get(FLAGS, headers=flagged["h"]["root"]).status_code == 200  # the session is not poisoned


# --- list ------------------------------------------------------------------------------------

def test_everyone_lists_flags_but_sees_only_its_own_tenants_override(flagged, client, subtests):
    values, other = {"a": False, "b": True}, {"a": "b", "b": "a"}
    for who, sees in [("root", {"a", "b"}), ("alice", {"a"}), ("amy", {"a"}), ("bob", {"b"}), ("bea", {"b"})]:
        with subtests.test(who=who):
            response = client.get(FLAGS, headers=flagged["h"][who])
            assert response.status_code == 200
            assert [f["key"] for f in response.json] == ["beta.search", "dark_mode", "new-checkout"]  # key order
            assert response.headers["X-Total-Count"] == "3"
            assert all(set(f) == FIELDS for f in response.json)
            assert response.json[0]["tenant_overrides"] == {str(flagged[t].id): values[t] for t in sees}
            assert response.json[1]["tenant_overrides"] == {} and response.json[2]["tenant_overrides"] == {}
            if len(sees) == 1:  # no other tenant's id anywhere in the answer
                assert str(flagged[other[next(iter(sees))]].id) not in response.get_data(as_text=True)


def test_list_needs_a_token(client):
    response = client.get(FLAGS)
    assert response.status_code == 401 and response.json["code"] == 401


FILTERS = [
    ({"q": "SEARCH"}, ["beta.search"]),            # key or description, any case
    ({"q": "checkout"}, ["new-checkout"]),
    ({"q": "theme"}, ["dark_mode"]),
    ({"q": "_"}, ["dark_mode"]),                   # LIKE wildcards are taken literally
    ({"q": "%"}, []),
    ({"enabled": "true"}, ["beta.search", "new-checkout"]),
    ({"enabled": "false"}, ["dark_mode"]),
    ({"enabled": "true", "q": "new"}, ["new-checkout"]),
    ({"sort": "-key"}, ["new-checkout", "dark_mode", "beta.search"]),
    ({"sort": "created_at"}, ["beta.search", "new-checkout", "dark_mode"]),
    ({"sort": "-updated_at"}, ["dark_mode", "new-checkout", "beta.search"]),
]


def test_filters_and_sorts(flagged, client, subtests):
    for query, expected in FILTERS:
        with subtests.test(query=query):
            response = client.get(FLAGS, headers=flagged["h"]["amy"], query_string=query)
            assert response.status_code == 200
            assert [f["key"] for f in response.json] == expected
            assert response.headers["X-Total-Count"] == str(len(expected))


def test_pages(flagged, client):
    response = client.get(FLAGS, headers=flagged["h"]["bea"], query_string={"page": 2, "page_size": 2})
    assert [f["key"] for f in response.json] == ["new-checkout"]
    assert response.headers["X-Total-Count"] == "3"
    assert json.loads(response.headers["X-Pagination"])["total_pages"] == 2


def test_bad_or_unknown_query_arguments_are_422(flagged, client, subtests):  # C02
    for query, field in [({"enabld": "true"}, "enabld"), ({"enabled": "maybe"}, "enabled"),
                         ({"sort": "description"}, "sort"), ({"sort": "-version"}, "sort"),
                         ({"page_size": "101"}, "page_size"), ({"q": ""}, "q"), ({"tenant_id": new_id()}, "tenant_id")]:
        with subtests.test(query=query):
            response = client.get(FLAGS, headers=flagged["h"]["alice"], query_string=query)
            assert response.status_code == 422
            assert field in response.json["errors"]


# --- read ------------------------------------------------------------------------------------

def test_read_one_flag(flagged, client, subtests):
    for who, key, status in [
        ("root", "beta.search", 200), ("alice", "beta.search", 200), ("amy", "beta.search", 200),
        ("bea", "dark_mode", 200), ("root", "missing", 404), ("amy", "missing", 404), ("root", "EVALUATE", 404),
        ("root", "a%00b", 404), ("root", "x" * 300, 404), (None, "beta.search", 401),
    ]:
        with subtests.test(who=who, key=key):
            response = client.get(f"{FLAGS}/{key}", headers=flagged["h"].get(who, {}))
            assert response.status_code == status and response.is_json
            if status == 200:
                assert response.json["key"] == key and set(response.json) == FIELDS and response.headers["ETag"]
            if status == 404:
                assert response.json["message"] == "Feature flag not found."


def test_a_tenant_member_reads_only_its_own_tenants_override(flagged, client):
    body = client.get(f"{FLAGS}/beta.search", headers=flagged["h"]["bea"]).json
    assert body["tenant_overrides"] == {str(flagged["b"].id): True}
    body = client.get(f"{FLAGS}/beta.search", headers=flagged["h"]["root"]).json
    assert body["tenant_overrides"] == {str(flagged["a"].id): False, str(flagged["b"].id): True}


def test_if_none_match_current_is_304(flagged, client):
    url = f"{FLAGS}/beta.search"
    etag = client.get(url, headers=flagged["h"]["amy"]).headers["ETag"]
    cached = client.get(url, headers={**flagged["h"]["amy"], "If-None-Match": etag})
    assert cached.status_code == 304 and cached.get_data() == b"" and cached.headers["ETag"] == etag


# --- change ----------------------------------------------------------------------------------

def test_platform_admin_changes_a_flag(flagged, client, app):
    url, h = f"{FLAGS}/new-checkout", flagged["h"]["root"]
    old = client.get(url, headers=h)
    response = client.patch(url, headers={**h, "If-Match": old.headers["ETag"]},
                            json={"description": "Checkout v3", "rollout_percentage": 75.5})
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["description"], body["rollout_percentage"], body["enabled"], body["version"]) == (
        "Checkout v3", 75.5, True, 2)
    assert body["updated_at"] > old.json["updated_at"] and body["created_at"] == old.json["created_at"]
    assert response.headers["ETag"] != old.headers["ETag"]
    assert client.get(url, headers=h).headers["ETag"] == response.headers["ETag"]
    [event] = events_of(app, "flag.update")
    assert (event.actor_id, event.tenant_id, event.target_id) == (flagged["people"]["root"].id, None, "new-checkout")
    assert event.changes == {"before": {"description": "The new checkout", "rollout_percentage": 50},
                             "after": {"description": "Checkout v3", "rollout_percentage": 75.5}}


def test_null_rollout_removes_it(flagged, client):
    response = client.patch(f"{FLAGS}/new-checkout", headers=flagged["h"]["root"], json={"rollout_percentage": None})
    assert response.status_code == 200 and response.json["rollout_percentage"] is None


def test_tenant_overrides_in_a_patch_replace_the_map(flagged, client, app):
    a, b = flagged["a"], flagged["b"]
    d = flagged["world"].tenant("tenant-d")
    response = client.patch(f"{FLAGS}/beta.search", headers=flagged["h"]["root"],
                            json={"tenant_overrides": {str(b.id): False, str(d.id): True}})
    assert response.status_code == 200, response.json
    assert response.json["tenant_overrides"] == {str(b.id): False, str(d.id): True}
    assert response.json["version"] == 2
    [event] = events_of(app, "flag.update")
    assert event.changes == {
        "before": {"tenant_overrides": {str(a.id): False, str(b.id): True}},
        "after": {"tenant_overrides": dict(sorted({str(b.id): False, str(d.id): True}.items()))}}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(FeatureFlagOverride)) == 2


def test_same_values_change_nothing_and_write_no_event(flagged, client, app):
    url, h = f"{FLAGS}/beta.search", flagged["h"]["root"]
    current = client.get(url, headers=h)
    before = db_state(app)
    response = client.patch(url, headers=h, json={
        "description": "Search v2", "enabled": True, "rollout_percentage": None,
        "tenant_overrides": current.json["tenant_overrides"]})
    assert response.status_code == 200 and db_state(app) == before
    assert response.headers["ETag"] == current.headers["ETag"]


def test_a_deleted_tenants_override_may_be_kept_but_not_changed(flagged, client, app):
    a, c, h = flagged["a"], flagged["c"], flagged["h"]["root"]
    with app.app_context():  # an override set while tenant-c was active
        flag_id = db.session.scalar(select(FeatureFlag.id).where(FeatureFlag.key == "dark_mode"))
        db.session.add(FeatureFlagOverride(flag_id=flag_id, tenant_id=c.id, enabled=True))
        db.session.commit()
    url = f"{FLAGS}/dark_mode"
    shown = client.get(url, headers=h).json["tenant_overrides"]
    assert shown == {str(c.id): True}  # still shown, and in force: it applies again if the tenant is restored
    evaluation = client.get(EVALUATE, headers=h, query_string={"tenant_id": c.id}).json
    assert evaluation["dark_mode"] == {"value": True, "reason": "tenant_override"}
    kept = client.patch(url, headers=h, json={"tenant_overrides": {**shown, str(a.id): True}})
    assert kept.status_code == 200 and kept.json["tenant_overrides"] == {str(c.id): True, str(a.id): True}
    before = db_state(app)
    changed = client.patch(url, headers=h, json={"tenant_overrides": {str(c.id): False}})
    assert_refused(app, before, changed, 422)
    assert changed.json["errors"] == {"tenant_overrides": {str(c.id): ["The tenant is deleted."]}}
    dropped = client.patch(url, headers=h, json={"tenant_overrides": {}})
    assert dropped.status_code == 200 and dropped.json["tenant_overrides"] == {}


def test_stale_if_match_is_412_and_current_one_wins(flagged, client, app):  # C03
    url, h = f"{FLAGS}/dark_mode", flagged["h"]["root"]
    first = client.get(url, headers=h).headers["ETag"]
    before = db_state(app)
    assert_refused(app, before, client.patch(url, headers={**h, "If-Match": '"stale"'}, json={"enabled": True}), 412)
    assert client.patch(url, headers={**h, "If-Match": first}, json={"enabled": True}).status_code == 200
    before = db_state(app)
    assert_refused(app, before, client.patch(url, headers={**h, "If-Match": first}, json={"enabled": False}), 412)
    assert client.get(url, headers=h).json["enabled"] is True


CHANGE_REFUSALS = [  # (who, key, body, status)
    (None, "dark_mode", {"enabled": True}, 401),
    ("alice", "dark_mode", {"enabled": True}, 403), ("amy", "dark_mode", {"enabled": True}, 403),
    ("alice", "missing", {"enabled": True}, 403),
    ("root", "missing", {"enabled": True}, 404), ("root", "evaluate", {"enabled": True}, 404),
    ("root", "dark_mode", {"key": "renamed"}, 422),  # the key is immutable
    ("root", "dark_mode", {"version": 7}, 422), ("root", "dark_mode", {"id": "x"}, 422),
    ("root", "dark_mode", {"enabled": "yes"}, 422), ("root", "dark_mode", {"rollout_percentage": 101}, 422),
    ("root", "dark_mode", {"description": 5}, 422), ("root", "dark_mode", {"tenant_overrides": {"MISSING": True}}, 422),
    ("root", "dark_mode", {"tenant_overrides": None}, 422),
]


def test_change_refusals_change_nothing(flagged, client, app, subtests):
    for who, key, body, status in CHANGE_REFUSALS:
        with subtests.test(who=who, key=key, body=body):
            if isinstance(body.get("tenant_overrides"), dict):
                body = {"tenant_overrides": {new_id(): True}}
            before = db_state(app)
            response = client.patch(f"{FLAGS}/{key}", headers=flagged["h"].get(who, {}), json=body)
            assert_refused(app, before, response, status)
            if status == 422:
                assert set(response.json["errors"]) == set(body)


# --- delete ----------------------------------------------------------------------------------

def test_platform_admin_deletes_a_flag_and_its_overrides(flagged, client, app):
    url, h = f"{FLAGS}/beta.search", flagged["h"]["root"]
    old = client.get(url, headers=h)
    response = client.delete(url, headers={**h, "If-Match": old.headers["ETag"]})
    assert response.status_code == 204 and response.get_data() == b""
    assert client.get(url, headers=h).status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(FeatureFlagOverride)) == 0
    [event] = events_of(app, "flag.delete")
    assert (event.target_id, event.tenant_id) == ("beta.search", None)
    assert event.changes == {"before": {key: old.json[key] for key in
                                        ("key", "description", "enabled", "rollout_percentage", "tenant_overrides")}}
    again = create(client, h, "beta.search")  # the key is free again; the new flag is a new resource
    assert again.json["version"] == 1 and again.headers["ETag"] != old.headers["ETag"]


def test_delete_refusals_change_nothing(flagged, client, app, subtests):
    for who, key, if_match, status in [
        (None, "dark_mode", None, 401), ("alice", "dark_mode", None, 403), ("bea", "dark_mode", None, 403),
        ("root", "missing", None, 404), ("root", "dark_mode", '"stale"', 412),
    ]:
        with subtests.test(who=who, key=key, if_match=if_match):
            headers = {**flagged["h"].get(who, {}), **({"If-Match": if_match} if if_match else {})}
            before = db_state(app)
            assert_refused(app, before, client.delete(f"{FLAGS}/{key}", headers=headers), status)


# --- overrides -------------------------------------------------------------------------------

def override_url(flagged, tenant: str, key: str = "dark_mode") -> str:
    tenant_id = flagged[tenant].id if tenant in ("a", "b", "c") else tenant
    return f"{FLAGS}/{key}/overrides/{tenant_id}"


def test_tenant_admin_sets_its_own_tenants_override(flagged, client, app):
    a, h = flagged["a"], flagged["h"]["alice"]
    old = client.get(f"{FLAGS}/dark_mode", headers=h)
    response = client.put(override_url(flagged, "a"), headers={**h, "If-Match": old.headers["ETag"]},
                          json={"enabled": True})
    assert response.status_code == 200, response.json
    assert response.json["tenant_overrides"] == {str(a.id): True} and response.json["version"] == 2
    assert response.headers["ETag"] != old.headers["ETag"]
    [event] = events_of(app, "flag.override_set")
    assert (event.actor_id, event.tenant_id, event.target_type, event.target_id) == (
        flagged["people"]["alice"].id, a.id, "feature_flag", "dark_mode")
    assert event.changes == {"before": {"override": None}, "after": {"override": True}}
    # The tenant's own audit log shows it to its admin.
    assert "flag.override_set" in [e["action"] for e in client.get("/api/v1/audit-events", headers=h).json]
    # The same value again: 200, nothing changes, no event.
    before = db_state(app)
    same = client.put(override_url(flagged, "a"), headers=h, json={"enabled": True})
    assert same.status_code == 200 and same.headers["ETag"] == response.headers["ETag"]
    assert db_state(app) == before
    flipped = client.put(override_url(flagged, "a"), headers=h, json={"enabled": False})
    assert flipped.json["tenant_overrides"] == {str(a.id): False} and flipped.json["version"] == 3
    assert events_of(app, "flag.override_set")[-1].changes == {"before": {"override": True},
                                                                "after": {"override": False}}


def test_tenant_admins_override_leaves_the_others_alone(flagged, client):
    b = flagged["b"]
    response = client.put(override_url(flagged, "b", "beta.search"), headers=flagged["h"]["bob"],
                          json={"enabled": False})
    assert response.json["tenant_overrides"] == {str(b.id): False}  # only its own entry is shown
    full = client.get(f"{FLAGS}/beta.search", headers=flagged["h"]["root"]).json["tenant_overrides"]
    assert full == {str(flagged["a"].id): False, str(b.id): False}


def test_platform_admin_sets_any_tenants_override_and_sees_them_all(flagged, client):
    response = client.put(override_url(flagged, "b", "beta.search"), headers=flagged["h"]["root"],
                          json={"enabled": False})
    assert response.status_code == 200
    assert response.json["tenant_overrides"] == {str(flagged["a"].id): False, str(flagged["b"].id): False}


SET_OVERRIDE_REFUSALS = [  # (who, tenant, key, body, status)
    (None, "a", "dark_mode", {"enabled": True}, 401),
    ("amy", "a", "dark_mode", {"enabled": True}, 403), ("bea", "b", "dark_mode", {"enabled": True}, 403),
    ("alice", "b", "dark_mode", {"enabled": True}, 404), ("bob", "a", "dark_mode", {"enabled": True}, 404),
    ("amy", "b", "dark_mode", {"enabled": True}, 404),
    ("alice", "MISSING", "dark_mode", {"enabled": True}, 404), ("root", "MISSING", "dark_mode", {"enabled": True}, 404),
    ("alice", "a", "missing", {"enabled": True}, 404), ("alice", "c", "dark_mode", {"enabled": True}, 404),
    ("root", "c", "dark_mode", {"enabled": True}, 422),  # deleted tenant
    ("alice", "a", "dark_mode", {}, 422), ("alice", "a", "dark_mode", {"enabled": "true"}, 422),
    ("alice", "a", "dark_mode", {"enabled": None}, 422), ("alice", "a", "dark_mode", {"enabled": True, "x": 1}, 422),
    ("alice", "a", "dark_mode", {"enabled": True, "If-Match": '"stale"'}, 412),
]


def test_set_override_refusals_change_nothing(flagged, client, app, subtests):
    for who, tenant, key, body, status in SET_OVERRIDE_REFUSALS:
        with subtests.test(who=who, tenant=tenant, key=key, body=body):
            tenant = new_id() if tenant == "MISSING" else tenant
            body = dict(body)
            if_match = {"If-Match": body.pop("If-Match")} if "If-Match" in body else {}
            headers = {**flagged["h"].get(who, {}), **if_match}
            before = db_state(app)
            response = client.put(override_url(flagged, tenant, key), headers=headers, json=body)
            assert_refused(app, before, response, status)


def test_tenant_admin_clears_its_own_tenants_override(flagged, client, app):
    a, h = flagged["a"], flagged["h"]["alice"]
    old = client.get(f"{FLAGS}/beta.search", headers=flagged["h"]["root"]).json
    response = client.delete(override_url(flagged, "a", "beta.search"), headers=h)
    assert response.status_code == 204 and response.get_data() == b""
    now = client.get(f"{FLAGS}/beta.search", headers=flagged["h"]["root"]).json
    assert now["tenant_overrides"] == {str(flagged["b"].id): True} and now["version"] == old["version"] + 1
    [event] = events_of(app, "flag.override_clear")
    assert (event.tenant_id, event.target_id) == (a.id, "beta.search")
    assert event.changes == {"before": {"override": False}, "after": {"override": None}}
    before = db_state(app)
    again = client.delete(override_url(flagged, "a", "beta.search"), headers=h)
    assert again.status_code == 204 and db_state(app) == before  # idempotent, no event


def test_a_deleted_tenants_override_can_be_cleared(flagged, client, app):
    with app.app_context():
        flag_id = db.session.scalar(select(FeatureFlag.id).where(FeatureFlag.key == "dark_mode"))
        db.session.add(FeatureFlagOverride(flag_id=flag_id, tenant_id=flagged["c"].id, enabled=True))
        db.session.commit()
    assert client.delete(override_url(flagged, "c"), headers=flagged["h"]["root"]).status_code == 204
    assert client.get(f"{FLAGS}/dark_mode", headers=flagged["h"]["root"]).json["tenant_overrides"] == {}
    assert audit_actions(app, action="flag.override_clear") == ["flag.override_clear"]


def test_clear_override_refusals_change_nothing(flagged, client, app, subtests):
    for who, tenant, key, headers, status in [
        (None, "a", "beta.search", {}, 401), ("amy", "a", "beta.search", {}, 403),
        ("bea", "b", "beta.search", {}, 403), ("alice", "b", "beta.search", {}, 404),
        ("bob", "a", "beta.search", {}, 404), ("root", "MISSING", "beta.search", {}, 404),
        ("alice", "a", "missing", {}, 404), ("alice", "a", "beta.search", {"If-Match": '"stale"'}, 412),
    ]:
        with subtests.test(who=who, tenant=tenant, key=key, headers=headers):
            tenant = new_id() if tenant == "MISSING" else tenant
            before = db_state(app)
            response = client.delete(override_url(flagged, tenant, key),
                                     headers={**flagged["h"].get(who, {}), **headers})
            assert_refused(app, before, response, status)


# --- evaluation ------------------------------------------------------------------------------

@pytest.fixture
def evaluated(std, client):
    """One flag per reason; tenant-a forces two of them."""
    a, root = std["a"], std["h"]["root"]
    create(client, root, "forced-on", enabled=False, tenant_overrides={str(a.id): True})
    create(client, root, "forced-off", enabled=True, rollout_percentage=100, tenant_overrides={str(a.id): False})
    create(client, root, "off", enabled=False, rollout_percentage=100)
    create(client, root, "nobody", enabled=True, rollout_percentage=0)
    create(client, root, "everybody", enabled=True, rollout_percentage=100)
    create(client, root, "plain", enabled=True)
    return std


def test_every_reason_for_tenant_a(evaluated, client):
    response = client.get(EVALUATE, headers=evaluated["h"]["amy"])
    assert response.status_code == 200
    assert response.json == {
        "everybody": {"value": True, "reason": "rollout"}, "forced-off": {"value": False, "reason": "tenant_override"},
        "forced-on": {"value": True, "reason": "tenant_override"}, "nobody": {"value": False, "reason": "rollout"},
        "off": {"value": False, "reason": "flag_disabled"}, "plain": {"value": True, "reason": "default"},
    }


def test_another_tenant_gets_no_override(evaluated, client):
    response = client.get(EVALUATE, headers=evaluated["h"]["bea"],
                          query_string={"user_id": evaluated["people"]["bea"].id})
    assert response.json["forced-on"] == {"value": False, "reason": "flag_disabled"}
    assert response.json["forced-off"] == {"value": True, "reason": "rollout"}


EVALUATIONS = [  # (who, query, status)
    ("amy", {}, 200), ("amy", {"user_id": "amy"}, 200), ("amy", {"tenant_id": "a", "user_id": "amy"}, 200),
    ("amy", {"user_id": "alice"}, 404),           # members evaluate for themselves only
    ("amy", {"tenant_id": "b"}, 404), ("amy", {"user_id": "bea"}, 404),
    ("alice", {"user_id": "amy"}, 200), ("alice", {"tenant_id": "a"}, 200),
    ("alice", {"tenant_id": "b"}, 404), ("alice", {"user_id": "bea"}, 404), ("alice", {"tenant_id": "MISSING"}, 404),
    ("root", {}, 422),                            # a platform admin names a tenant or a user
    ("root", {"tenant_id": "b"}, 200), ("root", {"user_id": "bea"}, 200), ("root", {"user_id": "root"}, 200),
    ("root", {"tenant_id": "a", "user_id": "bea"}, 404), ("root", {"tenant_id": "MISSING"}, 404),
    ("root", {"user_id": "MISSING"}, 404),
    ("root", {"tenant_id": "x"}, 422), ("root", {"tenant": "a"}, 422), ("amy", {"user": "amy"}, 422),
    (None, {}, 401),
]


def test_who_evaluates_for_whom(evaluated, client, subtests):
    people = evaluated["people"]
    names = {"a": evaluated["a"].id, "b": evaluated["b"].id, "MISSING": new_id(),
             **{name: person.id for name, person in people.items()}}
    for who, query, status in EVALUATIONS:
        with subtests.test(who=who, query=query):
            query = {k: str(names.get(v, v)) for k, v in query.items()}
            response = client.get(EVALUATE, headers=evaluated["h"].get(who, {}), query_string=query)
            assert response.status_code == status, response.json
            if status == 200:
                assert set(response.json) == {"everybody", "forced-off", "forced-on", "nobody", "off", "plain"}


def test_a_platform_level_user_gets_no_tenant_override(evaluated, client):
    root = evaluated["people"]["root"]
    response = client.get(EVALUATE, headers=evaluated["h"]["root"], query_string={"user_id": root.id})
    assert response.json["forced-on"] == {"value": False, "reason": "flag_disabled"}
    assert response.json["plain"] == {"value": True, "reason": "default"}


@pytest.fixture
def crowd(std, client):
    """tenant-a with 12 more members and a 30 % rollout."""
    people = [std["world"].user(f"m{n}@example.test", "member", std["a"]) for n in range(12)]
    create(client, std["h"]["root"], "gradual", enabled=True, rollout_percentage=30)
    return {**std, "crowd": people}


def reached(client, headers, people, key="gradual") -> set:
    values = {}
    for person in people:
        response = client.get(EVALUATE, headers=headers, query_string={"user_id": person.id})
        assert response.json[key]["reason"] == "rollout"
        values[person.id] = response.json[key]["value"]
    return {person_id for person_id, value in values.items() if value}


def test_rollout_is_sticky_per_user_and_only_grows(crowd, client, make_app):
    root, people = crowd["h"]["root"], crowd["crowd"]
    at_30 = reached(client, root, people)
    assert at_30 == {p.id for p in people if in_rollout("gradual", str(p.id), 3000)}
    assert reached(make_app().test_client(), root, people) == at_30  # another worker, the same answer
    client.patch(f"{FLAGS}/gradual", headers=root, json={"rollout_percentage": 70})
    at_70 = reached(client, root, people)
    assert at_30 <= at_70 and at_70 == {p.id for p in people if in_rollout("gradual", str(p.id), 7000)}


def test_without_a_user_the_tenant_is_the_subject(crowd, client):
    a = crowd["a"]
    response = client.get(EVALUATE, headers=crowd["h"]["alice"])
    assert response.json["gradual"] == {"value": in_rollout("gradual", str(a.id), 3000), "reason": "rollout"}


# --- races: the database picks one winner (PostgreSQL: real row locks) -------------------------

def race(make_app, requests, monkeypatch, name: str) -> list[int]:
    """Run the requests at once, each past `service.<name>` before any of them writes."""
    both_read = threading.Barrier(len(requests))
    real = getattr(service, name)

    def read_then_wait(*args, **kwargs):
        result = real(*args, **kwargs)
        try:
            both_read.wait(timeout=1.5)
        except threading.BrokenBarrierError:
            pass
        return result

    monkeypatch.setattr(service, name, read_then_wait)
    clients = [make_app().test_client() for _ in requests]  # built first: building apps is not thread-safe
    statuses = []
    threads = [threading.Thread(target=lambda c=c, r=r: statuses.append(r(c).status_code))
               for c, r in zip(clients, requests, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


@pytest.mark.postgres_only
def test_two_creates_of_one_key_make_one_flag(std, make_app, app, monkeypatch):
    root = std["h"]["root"]
    post = lambda c: c.post(FLAGS, headers=root, json={"key": "twin"})  # noqa: E731
    assert race(make_app, [post, post], monkeypatch, "_refuse_taken_key") == [201, 409]
    assert audit_actions(app, action="flag.create") == ["flag.create"]


@pytest.mark.postgres_only
def test_two_overrides_at_once_apply_one_after_the_other(flagged, make_app, app, monkeypatch):
    """The second waits for the first's lock on the flag, then reads what it wrote: a history without gaps."""
    url = override_url(flagged, "a")
    put = lambda value: lambda c: c.put(url, headers=flagged["h"]["alice"], json={"enabled": value})  # noqa: E731
    assert race(make_app, [put(True), put(False)], monkeypatch, "_find_flag") == [200, 200]
    first, second = events_of(app, "flag.override_set")
    assert first.changes["before"] == {"override": None} and second.changes["before"] == first.changes["after"]
    with app.app_context():
        stored = db.session.scalar(select(FeatureFlagOverride.enabled).join(
            FeatureFlag, FeatureFlag.id == FeatureFlagOverride.flag_id).where(FeatureFlag.key == "dark_mode"))
        assert db.session.scalar(select(FeatureFlag.version).where(FeatureFlag.key == "dark_mode")) == 3
    assert {"override": stored} == second.changes["after"]


@pytest.mark.postgres_only
def test_two_changes_at_once_apply_one_after_the_other(flagged, make_app, app, monkeypatch):
    patch = lambda text: lambda c: c.patch(f"{FLAGS}/dark_mode", headers=flagged["h"]["root"],  # noqa: E731
                                           json={"description": text})
    assert race(make_app, [patch("one"), patch("two")], monkeypatch, "_find_flag") == [200, 200]
    first, second = events_of(app, "flag.update")
    assert first.changes["before"] == {"description": "Dark theme"}
    assert second.changes["before"] == first.changes["after"]
    with app.app_context():
        stored = db.session.execute(select(FeatureFlag.description, FeatureFlag.version)
                                    .where(FeatureFlag.key == "dark_mode")).one()
    assert tuple(stored) == (second.changes["after"]["description"], 3)


@pytest.mark.postgres_only
def test_a_stale_if_match_loses_even_when_both_read_first(flagged, make_app, app, monkeypatch):
    """Both read version 1 and send its ETag: the second is compared with the version the first wrote (412)."""
    url, h = f"{FLAGS}/dark_mode", flagged["h"]["root"]
    etag = flagged["world"].client.get(url, headers=h).headers["ETag"]
    patch = lambda text: lambda c: c.patch(url, headers={**h, "If-Match": etag},  # noqa: E731
                                           json={"description": text})
    assert race(make_app, [patch("one"), patch("two")], monkeypatch, "_find_flag") == [200, 412]
    assert len(events_of(app, "flag.update")) == 1


def test_an_evaluation_changes_nothing(evaluated, client, app):
    before = db_state(app)
    assert client.get(EVALUATE, headers=evaluated["h"]["alice"]).status_code == 200
    assert db_state(app) == before


def test_row_ids_never_leave_the_server(flagged, client, app):
    """Keys address flags; their row ids are internal."""
    with app.app_context():
        ids = [str(i) for i in db.session.scalars(select(FeatureFlag.id))]
    text = client.get(FLAGS, headers=flagged["h"]["root"]).get_data(as_text=True)
    assert ids and not any(i in text for i in ids)


def test_one_tenant_named_twice_in_overrides_is_refused(std, client, app):
    """Found by a hostile review: two spellings of one tenant id were merged silently (the last one won)."""
    tenant = str(std["a"].id)
    for twin in (tenant.upper(), tenant.replace("-", "")):
        response = client.post("/api/v1/feature-flags", headers=std["h"]["root"],
                               json={"key": "twice.named", "enabled": True, "tenant_overrides": {tenant: True, twin: False}})
        assert response.status_code == 422 and "tenant_overrides" in response.json["errors"]
    assert client.get("/api/v1/feature-flags/twice.named", headers=std["h"]["root"]).status_code == 404
