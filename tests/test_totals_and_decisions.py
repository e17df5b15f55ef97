"""List totals (exact; PostgreSQL's estimate on very large unfiltered audit lists; users counted by the database)
and the policy-decision budget."""
import pytest
from sqlalchemy import text

from admin_api.extensions import db
from admin_api.policy import evaluator
from tests.conftest import bearer

USERS = "/api/v1/users"
EVENTS = "/api/v1/audit-events"
INVITATIONS = "/api/v1/invitations"


@pytest.fixture
def crowd(world):
    """tenant-a with 30 members, a platform admin and a tenant admin; 30 audit events; statistics fresh."""
    from admin_api.core import audit

    a = world.tenant("tenant-a")
    world.user("root@example.test", "platform_admin")
    world.user("alice@example.test", "tenant_admin", a)
    for n in range(30):
        world.user(f"member{n}@example.test", "member", a)
    with world.app.app_context():
        for _ in range(30):
            audit.record("demo.event", actor_email="cli", tenant_id=a.id)
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("ANALYZE users"))
            db.session.execute(text("ANALYZE audit_events"))
            db.session.commit()
    return world


@pytest.mark.postgres_only
@pytest.mark.parametrize("path, table", [(EVENTS, "audit_events")])
def test_large_unfiltered_totals_are_the_flagged_estimate(make_app, crowd, path, table):
    """Above COUNT_ESTIMATE_THRESHOLD, an unfiltered list answers the planner's estimate, flagged."""
    app = make_app(COUNT_ESTIMATE_THRESHOLD=10)
    client = app.test_client()
    headers = bearer(client.post("/api/v1/auth/login", json={"email": "root@example.test",
                                                              "password": "correct horse battery staple"}).json["access_token"])
    with app.app_context():
        db.session.execute(text(f"ANALYZE {table}"))
        db.session.commit()
        expected = db.session.scalar(text(f"SELECT reltuples::bigint FROM pg_class WHERE relname = '{table}'"))
    response = client.get(path, headers=headers, query_string={"page_size": 5})
    assert response.status_code == 200 and len(response.json) == 5
    assert response.headers["X-Total-Count-Estimated"] == "true"
    assert response.headers["X-Total-Count"] == str(expected)


@pytest.mark.postgres_only
def test_filtered_and_tenant_lists_stay_exact(make_app, crowd):
    app = make_app(COUNT_ESTIMATE_THRESHOLD=10)
    client = app.test_client()
    login = lambda email: bearer(client.post("/api/v1/auth/login", json={  # noqa: E731
        "email": email, "password": "correct horse battery staple"}).json["access_token"])
    root, alice = login("root@example.test"), login("alice@example.test")
    for headers, query, total in ((root, {"role": "member"}, 30), (root, {"q": "member1"}, 11), (alice, {}, 31)):
        response = client.get(USERS, headers=headers, query_string={"page_size": 5, **query})
        assert response.status_code == 200
        assert "X-Total-Count-Estimated" not in response.headers
        assert response.headers["X-Total-Count"] == str(total)


def test_user_totals_stay_exact_above_the_estimate_threshold(make_app, crowd):
    """Users are counted by the database as they come and go: no estimate, even on a very large list."""
    app = make_app(COUNT_ESTIMATE_THRESHOLD=10)
    client = app.test_client()
    root = crowd.headers("root@example.test")
    crowd.user("late@example.test", "member", crowd.tenant("tenant-b"))
    for query, total in (({}, 33), ({"page": 7}, 33), ({"page": 99}, 33)):
        response = client.get(USERS, headers=root, query_string={"page_size": 5, **query})
        assert response.status_code == 200
        assert "X-Total-Count-Estimated" not in response.headers
        assert response.headers["X-Total-Count"] == str(total)


def test_small_lists_are_exact_on_every_database(crowd, client):
    headers = crowd.headers("root@example.test")
    response = client.get(USERS, headers=headers, query_string={"page_size": 5, "page": 2})
    assert response.status_code == 200 and len(response.json) == 5
    assert response.headers["X-Total-Count"] == "32"
    assert "X-Total-Count-Estimated" not in response.headers


# --- at most two policy decisions per request -------------------------------------------------

@pytest.fixture
def decisions(monkeypatch):
    """Counts the Cedar evaluations made while serving requests."""
    made = []
    real = evaluator.evaluate

    def counting(**kwargs):
        made.append(kwargs["action"])
        return real(**kwargs)

    monkeypatch.setattr("admin_api.core.authz.evaluate", counting)
    return made


@pytest.mark.parametrize("who", ["root", "alice", "amy"])
@pytest.mark.parametrize("route", ["users", "user", "tenants", "tenant", "events", "me", "invitations", "invitation"])
def test_a_request_takes_at_most_two_policy_decisions(std, client, decisions, who, route):
    a, people = std["a"], std["people"]
    invitation = client.post(INVITATIONS, headers=std["h"]["alice"], json={"email": "carl@example.test", "role": "member"})
    paths = {
        "users": USERS, "user": f"{USERS}/{people['amy'].id}", "tenants": "/api/v1/tenants",
        "tenant": f"/api/v1/tenants/{a.id}", "events": EVENTS, "me": "/api/v1/auth/me",
        "invitations": INVITATIONS, "invitation": f"{INVITATIONS}/{invitation.json['id']}",
    }
    decisions.clear()
    response = client.get(paths[route], headers=std["h"][who])
    assert response.status_code in (200, 403, 404)
    assert len(decisions) <= 2, decisions


FLAGS = "/api/v1/feature-flags"


@pytest.mark.parametrize("who", ["root", "alice", "amy"])
def test_feature_flag_requests_take_at_most_two_policy_decisions(std, client, decisions, who):
    a, h = std["a"], std["h"]
    client.post(FLAGS, headers=h["root"], json={"key": "beta", "tenant_overrides": {str(a.id): True}})
    own = {"root": None, "alice": "alice", "amy": "amy"}[who]
    requests = [
        ("get", FLAGS, None), ("get", f"{FLAGS}/beta", None), ("get", f"{FLAGS}/evaluate", {"tenant_id": a.id}),
        ("get", f"{FLAGS}/evaluate", {"tenant_id": a.id, "user_id": std["people"][own or "amy"].id}),
        ("put", f"{FLAGS}/beta/overrides/{a.id}", {"enabled": False}),
        ("delete", f"{FLAGS}/beta/overrides/{a.id}", None),
        ("patch", f"{FLAGS}/beta", {"description": "x"}), ("post", FLAGS, {"key": "gamma"}),
        ("delete", f"{FLAGS}/beta", None),
    ]
    for method, path, data in requests:
        decisions.clear()
        kwargs = {"query_string": data} if method == "get" else {"json": data}
        response = getattr(client, method)(path, headers=h[who], **kwargs)
        assert response.status_code in (200, 201, 204, 403), (method, path, response.json)
        assert len(decisions) <= 2, (method, path, decisions)
