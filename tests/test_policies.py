"""Policies over HTTP: register, list, change, remove; enforcement inside the guard rails; dry-run; C23; CLI."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from admin_api.audit.models import AuditEvent
from admin_api.core import authz
from admin_api.extensions import db
from admin_api.policies.models import Policy, PolicySetVersion
from admin_api.policy import evaluator
from admin_api.policy.catalog import ACTIONS, ENTITY_TYPES, SCHEMA_TEXT
from admin_api.policy.source import problems, statement_spans
from tests.conftest import PASSWORD, audit_actions, bearer, in_threads, new_id

POLICIES = "/api/v1/policies"
USERS = "/api/v1/users"
# The example: tenant admins may not delete users who are tenant admins.
NO_ADMIN_DELETES = ('forbid (principal, action == Action::"users:delete", resource is User)\n'
                    'when { principal.role == "tenant_admin" && resource.role == "tenant_admin" };')
# Valid against the schema, but fails at run time on some contexts (integer overflow): C23.
OVERFLOWS_ON_MEMBER = ('forbid (principal, action == Action::"users:update", resource)\n'
                       'when { (if context.role == "member" then 9223372036854775807 else 0) + 1 < 0 };')
PERMIT_ALL = "permit (principal, action, resource);"


@pytest.fixture
def pw(std):
    """The standard world plus ann, a second tenant admin of tenant-a."""
    ann = std["world"].user("ann@example.test", "tenant_admin", std["a"])
    std["people"]["ann"] = ann
    return std


def register(client, headers, source=NO_ADMIN_DELETES, name="No admin deletes", **extra):
    return client.post(POLICIES, headers=headers, json={"name": name, "source": source, **extra})


def stored(app) -> tuple:
    """Every policy row, the live set versions, and the number of audit events."""
    with app.app_context():
        policies = db.session.execute(select(Policy.id, Policy.name, Policy.source, Policy.enabled, Policy.version)).all()
        versions = db.session.execute(select(PolicySetVersion.scope_id, PolicySetVersion.revision)).all()
        return set(map(tuple, policies)), set(map(tuple, versions)), db.session.scalar(
            select(func.count()).select_from(AuditEvent))


def ask(client, headers, requests, source=NO_ADMIN_DELETES, **extra):
    response = client.post(f"{POLICIES}/dry-run", headers=headers, json={"source": source, "requests": requests, **extra})
    assert response.status_code == 200, response.json
    return response.json


def delete_request(principal, target) -> dict:
    return {"principal": {"type": "User", "id": str(principal.id)}, "action": "users:delete",
            "resource": {"type": "User", "id": str(target.id)}}


# --- register, read, change, remove ---------------------------------------------------------------

def test_tenant_admin_registers_reads_changes_and_removes_a_policy(pw, client, app):
    h, a = pw["h"], pw["a"]
    created = register(client, h["alice"], description="Admins stay", enabled=False)
    assert created.status_code == 201, created.json
    policy = created.json
    assert created.headers["Location"].endswith(f"{POLICIES}/{policy['id']}") and created.headers["ETag"]
    assert {k: policy[k] for k in ("tenant_id", "name", "description", "source", "enabled", "version")} == {
        "tenant_id": str(a.id), "name": "No admin deletes", "description": "Admins stay", "source": NO_ADMIN_DELETES,
        "enabled": False, "version": 1}
    item = f"{POLICIES}/{policy['id']}"
    read = client.get(item, headers=h["alice"])
    assert read.status_code == 200 and read.json == policy
    changed = client.patch(item, headers={**h["alice"], "If-Match": read.headers["ETag"]}, json={"enabled": True})
    assert changed.status_code == 200 and changed.json["enabled"] is True and changed.json["version"] == 2
    stale = client.patch(item, headers={**h["alice"], "If-Match": read.headers["ETag"]}, json={"name": "x"})
    assert stale.status_code == 412
    same = client.patch(item, headers=h["alice"], json={"enabled": True})  # nothing changes: no version, no event
    assert same.status_code == 200 and same.json["version"] == 2
    listed = client.get(POLICIES, headers=h["alice"], query_string={"enabled": "true"})
    assert [p["id"] for p in listed.json] == [policy["id"]] and listed.headers["X-Total-Count"] == "1"
    assert client.delete(item, headers=h["alice"]).status_code == 204
    assert client.get(item, headers=h["alice"]).status_code == 404
    assert audit_actions(app, target_type="policy") == ["policy.create", "policy.update", "policy.delete"]
    with app.app_context():
        events = {e.action: e for e in db.session.scalars(select(AuditEvent).where(AuditEvent.target_type == "policy"))}
    assert events["policy.create"].changes["after"]["source"] == NO_ADMIN_DELETES
    assert events["policy.create"].tenant_id == a.id
    assert events["policy.update"].changes == {"before": {"enabled": False}, "after": {"enabled": True}}
    assert events["policy.delete"].changes["before"]["source"] == NO_ADMIN_DELETES


def test_lists_are_scoped_and_platform_wide_policies_belong_to_platform_admins(pw, client):
    h, a, b = pw["h"], pw["a"], pw["b"]
    mine = register(client, h["alice"]).json
    theirs = register(client, h["bob"]).json  # the same name in another tenant is fine
    platform = register(client, h["root"], name="Everywhere").json
    assert platform["tenant_id"] is None and theirs["tenant_id"] == str(b.id)
    assert [p["id"] for p in client.get(POLICIES, headers=h["alice"]).json] == [mine["id"]]
    assert {p["id"] for p in client.get(POLICIES, headers=h["root"]).json} == {mine["id"], theirs["id"], platform["id"]}
    by_tenant = client.get(POLICIES, headers=h["root"], query_string={"tenant_id": str(a.id)})
    assert [p["id"] for p in by_tenant.json] == [mine["id"]]
    for hidden in (theirs, platform):  # another tenant's, and the platform's: as if missing
        assert client.get(f"{POLICIES}/{hidden['id']}", headers=h["alice"]).status_code == 404
        assert client.patch(f"{POLICIES}/{hidden['id']}", headers=h["alice"], json={"enabled": False}).status_code == 404
    on_b = register(client, h["root"], name="For b", tenant_id=str(b.id))
    assert on_b.status_code == 201 and on_b.json["tenant_id"] == str(b.id)


@pytest.mark.parametrize("who, method, target, status", [
    (None, "get", "list", 401), (None, "post", "list", 401), (None, "get", "mine", 401), (None, "get", "schema", 401),
    (None, "post", "dry-run", 401),
    ("amy", "get", "list", 403), ("amy", "post", "list", 403), ("amy", "get", "mine", 404),
    ("amy", "get", "schema", 403), ("amy", "post", "dry-run", 403),
    ("bob", "get", "mine", 404), ("bob", "patch", "mine", 404), ("bob", "delete", "mine", 404),
    ("bob", "get", "list-a", 404), ("bob", "post", "list-a", 404), ("bob", "post", "dry-run-a", 404),
    ("alice", "get", "missing", 404), ("root", "delete", "missing", 404),
])
def test_refusals(pw, client, app, who, method, target, status):
    mine = register(client, pw["h"]["alice"]).json
    before = stored(app)
    a = str(pw["a"].id)
    paths = {"list": POLICIES, "list-a": POLICIES, "mine": f"{POLICIES}/{mine['id']}", "schema": f"{POLICIES}/schema",
             "dry-run": f"{POLICIES}/dry-run", "dry-run-a": f"{POLICIES}/dry-run", "missing": f"{POLICIES}/{new_id()}"}
    bodies = {"post": {"name": "X", "source": PERMIT_ALL}, "patch": {"enabled": False}}
    body = bodies.get(method)
    if target.startswith("dry-run"):
        body = {"source": PERMIT_ALL, "requests": [delete_request(pw["people"]["amy"], pw["people"]["amy"])]}
    if target.endswith("-a") and method == "post":
        body["tenant_id"] = a
    query = {"tenant_id": a} if target == "list-a" and method == "get" else {}
    response = getattr(client, method)(paths[target], headers=pw["h"].get(who, {}), json=body, query_string=query)
    assert response.status_code == status and response.json["code"] == status
    assert stored(app) == before


@pytest.mark.parametrize("body, field", [
    ({"source": "permit (principal, action, resource)"}, "source"),  # no `;`
    ({"source": 'permit (principal, action == Action::"users:fly", resource);'}, "source"),
    ({"source": "permit (principal == ?principal, action, resource);"}, "source"),  # a template
    ({"source": "// only a comment"}, "source"),
    ({"source": ""}, "source"),
    ({"name": ""}, "name"),
    ({"enabled": "maybe"}, "enabled"),
    ({"version": 7}, "version"),
    ({"tenant_id": "nope"}, "tenant_id"),
])
def test_invalid_input_is_422_and_stores_nothing(pw, client, app, body, field):
    register(client, pw["h"]["alice"])
    before = stored(app)
    response = client.post(POLICIES, headers=pw["h"]["alice"], json={"name": "Other", "source": PERMIT_ALL, **body})
    assert response.status_code == 422 and field in response.json["errors"], response.json
    assert stored(app) == before


def test_every_cedar_problem_is_reported_with_its_location(pw, client, app):
    """C23: a policy failing validation is 422, with each problem and where it is; the active ones stay."""
    amy = pw["people"]["amy"]
    source = ('permit (principal, action, resource);\n'
              '// a comment; with a semicolon\n'
              '  forbid (principal, action == Action::"users:delete", resource)\n'
              '  when { principal.nope == "x" };\n'
              'permit (principal, action, resource) when { resource.tenant == 1 };\n')
    before = stored(app)
    response = register(client, pw["h"]["alice"], source=source)
    assert response.status_code == 422
    problems = response.json["problems"]
    assert [p["location"] for p in problems][:1] == [{"policy": 2, "line": 3, "column": 3}]
    assert any("nope" in p["message"] for p in problems)
    assert any(p["location"]["policy"] == 3 and p["location"]["line"] == 5 for p in problems)
    assert all(not p["message"].startswith("for policy") for p in problems)
    assert response.json["errors"]["source"][0].startswith("line 3, column 3 (policy 2): ")
    assert stored(app) == before
    broken = register(client, pw["h"]["alice"], source='permit (principal, action, resource);\nforbid (principal, oops);\n'
                                                         'permit (principal, action, resource) when { ( };')
    assert [p["location"]["line"] for p in broken.json["problems"]] == [2, 3]  # both broken statements
    assert client.get(f"{USERS}/{amy.id}", headers=pw["h"]["amy"]).status_code == 200


def test_names_are_unique_per_scope_whatever_their_case(pw, client, app):
    assert register(client, pw["h"]["alice"]).status_code == 201
    before = stored(app)
    taken = register(client, pw["h"]["alice"], name="NO ADMIN DELETES")
    assert taken.status_code == 409 and "name" in taken.json["errors"]
    assert stored(app) == before
    other = register(client, pw["h"]["alice"], name="Other").json
    before = stored(app)
    renamed = client.patch(f"{POLICIES}/{other['id']}", headers=pw["h"]["alice"], json={"name": "no admin deletes"})
    assert renamed.status_code == 409
    assert stored(app) == before


def test_no_policy_changes_inside_a_deleted_tenant(pw, client, app):
    mine = register(client, pw["h"]["root"], tenant_id=str(pw["a"].id)).json
    assert client.delete(f"/api/v1/tenants/{pw['a'].id}", headers=pw["h"]["root"]).status_code == 204
    before = stored(app)
    assert register(client, pw["h"]["root"], name="New", tenant_id=str(pw["a"].id)).status_code == 409
    assert client.patch(f"{POLICIES}/{mine['id']}", headers=pw["h"]["root"], json={"enabled": False}).status_code == 409
    assert stored(app) == before


@pytest.mark.postgres_only
def test_concurrent_registrations_of_one_name_leave_one(pw, make_app, app):
    headers = pw["h"]["alice"]
    statuses = in_threads(4, make_app, lambda c: register(c, headers).status_code)
    assert sorted(statuses) == [201, 409, 409, 409]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Policy)) == 1


# --- enforcement ---------------------------------------------------------------------------

def test_a_registered_forbid_applies_from_the_next_request_in_every_instance(pw, client, make_app, app):
    """The issue's check: dry-run first (changed for exactly that request), then register, then 403 everywhere."""
    h, people = pw["h"], pw["people"]
    alice, ann, amy = people["alice"], people["ann"], people["amy"]
    other = make_app().test_client()  # another worker, with its own cache
    assert other.get(f"{USERS}/{ann.id}", headers=h["alice"]).status_code == 200  # warms its cache
    trial = ask(client, h["alice"], [delete_request(alice, ann), delete_request(alice, amy)])
    assert trial["valid"] is True and trial["errors"] == []
    first, second = trial["results"]
    assert (first["decision"], first["decision_without_candidate"], first["changed"]) == ("deny", "allow", True)
    assert first["determining_policies"] == [{"id": "draft", "name": "draft", "kind": "draft", "draft": True}]
    assert (second["decision"], second["changed"]) == ("allow", False)
    assert second["determining_policies"][0]["kind"] == "builtin"

    policy = register(client, h["alice"]).json
    assert client.delete(f"{USERS}/{ann.id}", headers=h["alice"]).status_code == 403
    assert other.delete(f"{USERS}/{ann.id}", headers=h["alice"]).status_code == 403
    assert client.delete(f"{USERS}/{amy.id}", headers=h["alice"]).status_code == 204  # members still go
    # Bob's tenant is not concerned; root never is.
    assert client.delete(f"{USERS}/{pw['people']['bea'].id}", headers=h["bob"]).status_code == 204
    # Disabled, the policy no longer applies, in either instance.
    client.patch(f"{POLICIES}/{policy['id']}", headers=h["alice"], json={"enabled": False})
    assert other.delete(f"{USERS}/{ann.id}", headers=h["alice"]).status_code == 204


def test_a_permit_on_another_tenants_users_changes_nothing(pw, client):
    h, people = pw["h"], pw["people"]
    bea, amy = people["bea"], people["amy"]
    trial = ask(client, h["root"], [delete_request(people["alice"], bea)], source=PERMIT_ALL,
                tenant_id=str(pw["a"].id))
    assert trial["results"][0]["changed"] is False
    assert trial["results"][0]["determining_policies"][0]["kind"] == "guard"
    assert register(client, h["alice"], source=PERMIT_ALL, name="Everything").status_code == 201
    assert client.get(f"{USERS}/{bea.id}", headers=h["alice"]).status_code == 404
    assert client.delete(f"{USERS}/{bea.id}", headers=h["alice"]).status_code == 404
    assert client.get(USERS, headers=h["alice"], query_string={"tenant_id": str(pw["b"].id)}).status_code == 404
    # Inside the tenant a registered permit does widen: amy, a member, may now read alice...
    assert client.get(f"{USERS}/{people['alice'].id}", headers=h["amy"]).status_code == 200
    # ...but never gets a platform action, nor another tenant.
    assert client.post("/api/v1/tenants", headers=h["amy"], json={"name": "Mine", "slug": "mine"}).status_code == 403
    assert client.delete(f"/api/v1/tenants/{pw['a'].id}", headers=h["alice"]).status_code == 403
    assert client.get(f"/api/v1/tenants/{pw['b'].id}", headers=h["amy"]).status_code == 404
    everyone = client.get(USERS, headers=h["alice"])
    assert {u["email"] for u in everyone.json} == {"alice@example.test", "amy@example.test", "ann@example.test"}
    assert client.get(f"{USERS}/{amy.id}", headers=h["bea"]).status_code == 404  # tenant-b has no such policy


def test_no_policy_locks_platform_admins_out(pw, client):
    h = pw["h"]
    forbid_all = "forbid (principal, action, resource);"
    tenant_policy = register(client, h["alice"], source=forbid_all, name="Lock").json
    platform_policy = register(client, h["root"], source=forbid_all, name="Lock all").json
    assert client.get(USERS, headers=h["root"]).status_code == 200
    assert client.get(f"{USERS}/{pw['people']['amy'].id}", headers=h["root"]).status_code == 200
    assert client.get(USERS, headers=h["alice"]).status_code == 403  # the tenant locked itself out...
    assert client.get(USERS, headers=h["bob"]).status_code == 403  # ...the platform-wide one every tenant
    for policy in (tenant_policy, platform_policy):  # ...and a platform admin repairs it
        assert client.delete(f"{POLICIES}/{policy['id']}", headers=h["root"]).status_code == 204
    assert client.get(USERS, headers=h["alice"]).status_code == 200


def test_a_policy_that_fails_at_run_time_denies_and_is_audited(pw, client, app):
    """C23: a live request that hits a policy error is refused (fail closed) and an authz.error event stays."""
    h, amy = pw["h"], pw["people"]["amy"]
    policy = register(client, h["alice"], source=OVERFLOWS_ON_MEMBER, name="Overflow").json
    response = client.patch(f"{USERS}/{amy.id}", headers=h["alice"], json={"display_name": "Amy Two"})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.get(authz.model_named("User"), amy.id).display_name == "Amy"
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "authz.error"))
    assert event.actor_id == pw["people"]["alice"].id and event.tenant_id == pw["a"].id
    assert (event.target_type, event.target_id) == ("user", str(amy.id))
    assert event.changes["action"] == "users:update" and policy["id"] in event.changes["errors"][0]
    promoted = client.patch(f"{USERS}/{amy.id}", headers=h["alice"], json={"role": "tenant_admin"})
    assert promoted.status_code == 200  # the condition does not overflow there


# --- dry-run -----------------------------------------------------------------------------------

def test_dry_run_shows_a_failing_forbid_instead_of_a_bare_allow(pw, client, app):
    """C23: permit-all plus a forbid that fails at run time: the error, naming the forbid; never a bare allow."""
    alice, amy = pw["people"]["alice"], pw["people"]["amy"]
    before = stored(app)
    evaluator.MEMO.clear()
    request = {"principal": {"type": "User", "id": str(alice.id)}, "action": "users:update",
               "resource": {"type": "User", "id": str(amy.id)}, "context": {"role": "member"}}
    trial = ask(client, pw["h"]["alice"], [request, {**request, "context": {"role": 5}}],
                source=f"{PERMIT_ALL}\n{OVERFLOWS_ON_MEMBER}")
    failing, mistyped = trial["results"]
    assert (failing["decision"], failing["decision_without_candidate"], failing["changed"]) == ("deny", "allow", True)
    assert [e["policy"] for e in failing["errors"]] == [{"id": "draft", "name": "draft", "kind": "draft", "draft": True}]
    assert "overflow" in failing["errors"][0]["message"]
    assert mistyped["decision"] == "deny" and "context" in mistyped["errors"][0]["message"]
    assert stored(app) == before  # saves and audits nothing...
    authorizing_the_caller = len(evaluator.MEMO)
    evaluator.MEMO.clear()
    ask(client, pw["h"]["alice"], [request] * 5 + [delete_request(alice, amy)], source=PERMIT_ALL)
    assert len(evaluator.MEMO) == authorizing_the_caller  # ...and keeps out of the decision memo


def test_dry_run_of_invalid_cedar_is_a_valid_answer(pw, client):
    trial = ask(client, pw["h"]["alice"], [delete_request(pw["people"]["alice"], pw["people"]["amy"])],
                source="permit (principal, action, resource)\nforbid")
    assert trial["valid"] is False and trial["results"] == []
    assert trial["errors"][0]["location"] == {"policy": 1, "line": 1, "column": 1}


def test_dry_run_answers_each_unusable_request_on_its_own(pw, client):
    people = pw["people"]
    alice, bea = str(people["alice"].id), str(people["bea"].id)
    user = lambda id_: {"type": "User", "id": id_}  # noqa: E731
    requests = [
        {"principal": user(alice), "action": "users:fly", "resource": user(alice)},
        {"principal": user(alice), "action": "users:read", "resource": {"type": "Robot", "id": "r2"}},
        {"principal": {"type": "Tenant", "id": str(pw["a"].id)}, "action": "users:read", "resource": user(alice)},
        {"principal": user(alice), "action": "users:read", "resource": user(new_id())},
        {"principal": user(alice), "action": "users:read", "resource": user("not-a-uuid")},
        {"principal": user(alice), "action": "users:read", "resource": user(bea)},  # another tenant's: not found
        {"principal": user(alice), "action": "users:list", "resource": {"type": "Platform", "id": "platform"}},
    ]
    results = ask(client, pw["h"]["alice"], requests, source=PERMIT_ALL)["results"]
    for result in results[:6]:
        assert result["decision"] is None and result["changed"] is False and len(result["errors"]) == 1
    assert "not found" in results[5]["errors"][0]["message"]
    assert results[6]["decision"] == "deny" and results[6]["determining_policies"][0]["kind"] == "guard"
    assert ask(client, pw["h"]["root"], requests[5:6], source=PERMIT_ALL, tenant_id=str(pw["a"].id))[
        "results"][0]["decision"] == "deny"  # a platform admin may name anything


@pytest.mark.parametrize("count", [0, 101])
def test_dry_run_takes_one_to_a_hundred_requests(pw, client, count):
    request = delete_request(pw["people"]["alice"], pw["people"]["amy"])
    response = client.post(f"{POLICIES}/dry-run", headers=pw["h"]["alice"],
                           json={"source": PERMIT_ALL, "requests": [request] * count})
    assert response.status_code == 422 and "requests" in response.json["errors"]


def test_a_platform_wide_draft_applies_to_every_tenant_but_not_to_platform_admins(pw, client):
    people = pw["people"]
    requests = [delete_request(people["alice"], people["ann"]), delete_request(people["bob"], people["bea"]),
                delete_request(people["root"], people["ann"])]
    forbid_all = "forbid (principal, action, resource);"
    results = ask(client, pw["h"]["root"], requests, source=forbid_all)["results"]
    assert [(r["decision"], r["changed"]) for r in results] == [("deny", True), ("deny", True), ("allow", False)]
    for_a = ask(client, pw["h"]["root"], requests, source=forbid_all, tenant_id=str(pw["a"].id))["results"]
    assert [r["changed"] for r in for_a] == [True, False, False]


def test_live_policies_show_in_the_dry_run_by_name(pw, client):
    people = pw["people"]
    policy = register(client, pw["h"]["alice"]).json
    result = ask(client, pw["h"]["alice"], [delete_request(people["alice"], people["ann"])], source=PERMIT_ALL)["results"][0]
    assert (result["decision"], result["decision_without_candidate"], result["changed"]) == ("deny", "deny", False)
    assert result["determining_policies"] == [
        {"id": policy["id"], "name": "No admin deletes", "kind": "registered", "draft": False}]


# --- schema, guard-rail lists, CLI ---------------------------------------------------------------

def test_the_schema_is_the_evaluators(pw, client):
    response = client.get(f"{POLICIES}/schema", headers=pw["h"]["alice"])
    assert response.status_code == 200
    body = response.json
    assert body["cedar"] == SCHEMA_TEXT
    assert {"User", "Tenant", "Role", "Platform", "Policy", "AuditEvent"} <= {e["name"] for e in body["entity_types"]}
    actions = {a["name"]: a for a in body["actions"]}
    assert actions["users:delete"]["resource_types"] == ["User"]
    assert actions["users:create"]["context"] == {"role": {"type": "String", "required": True}}
    assert actions["users:delete"]["tenant_policies_may_permit"] is True
    assert actions["tenants:create"]["tenant_policies_may_permit"] is False
    assert set(actions) == set(ACTIONS)


def test_every_action_is_classified_for_the_guard_rails():
    """A new action goes into TENANT_ACTIONS or PLATFORM_ACTIONS (core/authz.py), and only actions of the schema."""
    assert not authz.TENANT_ACTIONS & authz.PLATFORM_ACTIONS
    assert authz.TENANT_ACTIONS | authz.PLATFORM_ACTIONS == set(ACTIONS)


def test_the_catalog_lists_what_cedar_validates():
    import cedarpy

    for name in ACTIONS:
        policy = f'permit (principal, action == Action::"{name}", resource);'
        assert cedarpy.validate_policies(policy, evaluator.SCHEMA).validation_passed, name
    for name in ENTITY_TYPES:
        assert cedarpy.validate_policies(f"permit (principal, action, resource is {name});",
                                         evaluator.SCHEMA).errors is not None


def test_policies_check_command(runner, world, tmp_path):
    world.tenant("tenant-a")
    good, bad = tmp_path / "good.cedar", tmp_path / "bad.cedar"
    good.write_text(NO_ADMIN_DELETES)
    bad.write_text('permit (principal, action, resource);\n\nforbid (principal, action == Action::"nope", resource);')
    result = runner.invoke(args=["policies", "check", str(good), "--tenant", "tenant-a"])
    assert result.exit_code == 0 and "valid" in result.output and "tenant-a" in result.output
    result = runner.invoke(args=["policies", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:3:1: " in result.output and "unrecognized action" in result.output
    result = runner.invoke(args=["policies", "check", str(good), "--tenant", "nope"])
    assert result.exit_code == 1 and "nope" in result.output


def test_a_sign_in_reads_the_policy_versions_with_the_user(pw, client, app):
    """The versions ride in the token-user query: a policy change is seen by the next request without a cache flush."""
    assert client.get(USERS, headers=pw["h"]["alice"]).status_code == 200
    register(client, pw["h"]["root"], source="forbid (principal, action == Action::\"users:list\", resource);",
             name="No lists")
    assert client.get(USERS, headers=pw["h"]["alice"]).status_code == 403
    headers = bearer(client.post("/api/v1/auth/login", json={"email": "bea@example.test", "password": PASSWORD})
                     .json["access_token"])
    assert client.get(f"{USERS}/{pw['people']['bea'].id}", headers=headers).status_code == 200


def test_real_policy_answers_match_the_document(pw, client, app):
    """The shapes schemathesis rarely reaches: a 422 with problems, both kinds of dry-run answer, the schema."""
    import schemathesis

    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    h, people = pw["h"], pw["people"]
    request = delete_request(people["alice"], people["ann"])
    answers = [
        ("/api/v1/policies", "POST", register(client, h["alice"], source="permit (principal, oops);"), 422),
        ("/api/v1/policies", "POST", register(client, h["alice"]), 201),
        ("/api/v1/policies", "POST", register(client, h["alice"]), 409),
        ("/api/v1/policies/dry-run", "POST", client.post(f"{POLICIES}/dry-run", headers=h["alice"], json={
            "source": f"{PERMIT_ALL}\n{OVERFLOWS_ON_MEMBER}", "requests": [request, {**request, "action": "nope"}]}), 200),
        ("/api/v1/policies/dry-run", "POST", client.post(f"{POLICIES}/dry-run", headers=h["alice"], json={
            "source": "nope", "requests": [request]}), 200),
        ("/api/v1/policies/schema", "GET", client.get(f"{POLICIES}/schema", headers=h["alice"]), 200),
    ]
    for path, method, response, status in answers:
        assert response.status_code == status, (method, path, response.json)
        schema[path][method].validate_response(response)


# --- found by a hostile review: text shaped to overflow Cedar's stack --------------------------------

DEEP_SHAPES = {
    "brackets": "permit (principal, action, resource) when { " + "(" * 1000 + "true" + ")" * 1000 + " };",
    "sets": "permit (principal, action, resource) when { " + "[" * 1000 + "1" + "]" * 1000 + " == [1] };",
    "records": "permit (principal, action, resource) when { " + "{a:" * 1000 + "1" + "}" * 1000 + " == {a: 1} };",
    "and chain": "permit (principal, action, resource) when { " + " && ".join(["true"] * 3000) + " };",
    "if chain": "permit (principal, action, resource) when { " + "if true then " * 800 + "true" + " else false" * 800 + " };",
    # the guard once let these through (an `else` counted as closing a level; a stray closer counted below zero)
    "else-if chain": "permit (principal, action, resource) when { " + "if true then true else " * 150 + "true };",
    "stray closers first": "permit (principal, action, resource) when { " + ")" * 480 + "(" * 500 + "true };",
    "stray elses first": "permit (principal, action, resource) when { " + "else " * 480 + "(" * 500 + "true };",
    # Cedar ends a `//` comment at a carriage return too: the guard once read on to the next `\n` and let these through
    "after a comment ended by CR": "permit (principal, action, resource) when { // x\r" + "(" * 1000 + "true" + ")" * 1000 + " };",
    "after a comment ended by CRLF": "permit (principal, action, resource) when { // x\r\n" + "(" * 1000 + "true" + ")" * 1000 + " };",
}


@pytest.mark.parametrize("shape", DEEP_SHAPES)
def test_text_that_would_overflow_cedar_is_refused_before_cedar_sees_it(pw, client, app, shape):
    """These crashed the worker process (SIGSEGV) in Cedar's parser: now a 422 / valid:false, nothing stored."""
    before = stored(app)
    response = register(client, pw["h"]["alice"], source=DEEP_SHAPES[shape])
    assert response.status_code == 422
    assert response.json["problems"][0]["location"]["line"] == 1
    assert response.json["problems"][0]["message"].startswith(("Nested more than", "Longer than"))  # the guard's
    trial = ask(client, pw["h"]["alice"], [delete_request(pw["people"]["alice"], pw["people"]["amy"])],
                source=DEEP_SHAPES[shape])
    assert trial["valid"] is False and trial["results"] == []
    assert stored(app) == before


def test_text_with_windows_or_old_mac_line_endings_is_read_as_cedar_reads_it(pw, client):
    """Comments end at CR as in Cedar: the statement after one is a statement, and a `;` in a comment ends nothing."""
    source = "// first; still a comment\r@note(\"x\")\r\npermit (principal, action, resource) // why; because\rwhen { true };"
    assert problems(source) == [] and len(statement_spans(source)) == 1
    response = register(client, pw["h"]["alice"], source=source)
    assert response.status_code == 201, response.json


def test_the_largest_shapes_allowed_parse_safely_in_a_thread():
    """The limits sit far below the crash: the largest allowed shapes go through Cedar in a worker thread.

    In a child process, so that a regression shows as a failed test rather than a dead test run.
    """
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent('''
        import threading, cedarpy
        from admin_api.policy.source import problems, MAX_TOKENS_PER_STATEMENT as T, MAX_NESTING as D
        from admin_api.policy.catalog import SCHEMA
        shapes = ["(" * (D - 1) + "true" + ")" * (D - 1),
                  " && ".join(["true"] * (T // 2 - 10)),
                  "if false then false else " * (D - 1) + "true",
                  " && ".join(["(if true then true else false)"] * ((T - 20) // 9)),
                  "context" + ".a" * (T // 2 - 10) + " == 1"]
        def run():
            for cond in shapes:
                source = "permit (principal, action, resource) when { " + cond + " };"
                found = problems(source)
                assert not any(p.message.startswith(("Nested", "Longer")) for p in found), cond[:80]  # within limits
                if not found:
                    request = {"principal": {"type": "User", "id": "u"}, "action": {"type": "Action", "id": "users:read"},
                               "resource": {"type": "User", "id": "u"}, "context": {}}
                    entity = {"uid": {"type": "User", "id": "u"}, "attrs": {"role": "member", "status": "active"}, "parents": []}
                    cedarpy.is_authorized(request, cedarpy.PolicySet.from_str(source), [entity], schema=SCHEMA)
            print("survived")
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    ''')
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "survived" in done.stdout, done.stderr[-2000:]


def test_policies_check_refuses_a_file_that_is_not_utf8_in_one_line(runner, tmp_path):
    latin = tmp_path / "latin.cedar"
    latin.write_bytes('permit (principal, action, resource) when { principal.role == "caf\xe9" };'.encode("latin-1"))
    result = runner.invoke(args=["policies", "check", str(latin)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "UTF-8" in result.stderr


# --- found by a hostile review: every worker parses a scope's policies, so a scope holds a bounded amount ----

def _padded(length: int) -> str:
    """A valid policy of exactly `length` characters (a comment pads it)."""
    policy = "\nforbid (principal, action == Action::\"users:delete\", resource) when { false };"
    return "// " + "x" * (length - len(policy) - 3) + policy


def test_a_scope_holds_a_bounded_amount_of_cedar_text(pw, client, app):
    from admin_api.policies.service import MAX_SCOPE_SOURCE_LENGTH

    h = pw["h"]["alice"]
    rest = MAX_SCOPE_SOURCE_LENGTH - 120_000 - 100
    made = [register(client, h, _padded(size), name=f"p{n}") for n, size in enumerate((60_000, 60_000, rest))]
    assert [response.status_code for response in made] == [201, 201, 201]  # 100 characters short of the limit
    before = stored(app)
    refused = register(client, h, _padded(101), name="over")
    assert refused.status_code == 409 and "characters" in refused.json["message"]
    grown = client.patch(f"{POLICIES}/{made[2].json['id']}", headers=h, json={"source": _padded(rest + 101)})
    assert grown.status_code == 409
    assert stored(app) == before  # nothing stored, no version moved, no audit event
    assert register(client, h, _padded(100), name="exactly at the limit").status_code == 201
    # another tenant's budget is its own
    assert register(client, pw["h"]["bob"], _padded(60_000), name="one").status_code == 201


def test_a_scope_holds_a_bounded_number_of_policies(pw, client, app, monkeypatch):
    from admin_api.policies import service

    monkeypatch.setattr(service, "MAX_POLICIES_PER_SCOPE", 5)
    h = pw["h"]["alice"]
    assert all(register(client, h, name=f"p{n}").status_code == 201 for n in range(5))
    before = stored(app)
    refused = register(client, h, name="p5")
    assert refused.status_code == 409 and "at most 5 policies" in refused.json["message"]
    assert stored(app) == before
    assert register(client, pw["h"]["bob"], name="p5").status_code == 201


def test_a_text_with_thousands_of_problems_gets_the_first_hundred_quickly_and_always_the_same(pw, client, app):
    """Found by a hostile review: Cedar reports a problem per term and per action, and 62 KB of text once made a
    42 MB answer after 13 s (22 MB from the dry-run), in a random order from one call to the next."""
    from admin_api.policy.source import MAX_PROBLEMS

    terms = "||".join(f"context.{chr(97 + i % 26)}{i}" for i in range(95))
    source = f"permit (principal, action, resource) when {{ {terms} }};\n" * 49
    before = stored(app)
    answers = [register(client, pw["h"]["alice"], source=source, name="many") for _ in range(2)]
    assert [answer.status_code for answer in answers] == [422, 422] and stored(app) == before
    problems_found = answers[0].json["problems"]
    assert len(problems_found) == MAX_PROBLEMS + 1 and "not shown" in problems_found[-1]["message"]
    assert problems_found == answers[1].json["problems"]
    assert len(answers[0].get_data()) < 100_000
    trial = ask(client, pw["h"]["alice"], [delete_request(pw["people"]["alice"], pw["people"]["amy"])], source=source)
    assert trial["valid"] is False and len(trial["errors"]) == MAX_PROBLEMS + 1


def test_a_large_draft_is_added_once_for_every_action_it_may_apply_to():
    from admin_api.policy.evaluator import BUILTIN, SPLIT_BY_ACTION_UP_TO, Registered

    large = BUILTIN.with_draft(Registered("draft", "draft", "// " + "x" * (SPLIT_BY_ACTION_UP_TO // 37) + "\n" + PERMIT_ALL))
    assert large.for_action("users:list") is large.for_action("users:delete")
    small = BUILTIN.with_draft(Registered("draft", "draft", PERMIT_ALL))
    assert small.for_action("users:list") is not small.for_action("users:delete")
