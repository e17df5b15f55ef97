"""Pages far into a list are found by their ids first (core.pagination.DEEP_OFFSET).

They must hold the same rows, in the same order, with the same totals as the
plain page query would give, whatever the list, sort, filter or reader.
"""
import pytest
from sqlalchemy import select

from admin_api.core import pagination
from admin_api.extensions import db
from admin_api.users.models import User
from tests.conftest import PASSWORD
from tests.test_totals_and_decisions import crowd  # noqa: F401 (a fixture)

USERS = "/api/v1/users"


def every_page(client, path: str, headers: dict, query: dict) -> tuple[list, list]:
    """The ids of each page of two, walked to one past the end, and the totals each page gave."""
    pages, totals = [], []
    for page in range(1, 100):
        response = client.get(path, headers=headers, query_string={**query, "page": page, "page_size": 2})
        assert response.status_code == 200, response.json
        pages.append([item["id"] for item in response.json])
        totals.append((response.headers["X-Total-Count"], response.headers["X-Pagination"]))
        if not response.json:
            return pages, totals
    raise AssertionError("the list did not end")


@pytest.mark.parametrize("who, path, query", [
    ("root@example.test", USERS, {}),
    ("root@example.test", USERS, {"sort": "email"}),
    ("root@example.test", USERS, {"sort": "-display_name"}),
    ("root@example.test", USERS, {"role": "member", "sort": "created_at"}),
    ("root@example.test", USERS, {"q": "member1"}),
    ("alice@example.test", USERS, {"sort": "-email"}),
    ("root@example.test", "/api/v1/audit-events", {}),
    ("alice@example.test", "/api/v1/audit-events", {"action": "demo.event"}),
    ("root@example.test", "/api/v1/tenants", {"sort": "slug"}),
])
def test_deep_pages_hold_what_the_plain_query_gives(crowd, client, monkeypatch, who, path, query):  # noqa: F811
    for n in range(5):
        crowd.tenant(f"tenant-{n}")
    headers = crowd.headers(who)
    monkeypatch.setattr(pagination, "DEEP_OFFSET", 10**9)
    plain = every_page(client, path, headers, query)
    monkeypatch.setattr(pagination, "DEEP_OFFSET", 4)  # from page 3 on
    deep = every_page(client, path, headers, query)
    assert deep == plain
    assert sum(1 for ids in plain[0] if ids) >= 3  # the walk went past DEEP_OFFSET


@pytest.mark.postgres_only
def test_a_deep_page_of_an_estimated_total_is_the_plain_one(make_app, crowd, monkeypatch):  # noqa: F811
    app = make_app(COUNT_ESTIMATE_THRESHOLD=10)
    client = app.test_client()
    headers = crowd.headers("root@example.test")
    monkeypatch.setattr(pagination, "DEEP_OFFSET", 10**9)
    plain = every_page(client, "/api/v1/audit-events", headers, {})
    monkeypatch.setattr(pagination, "DEEP_OFFSET", 4)
    assert every_page(client, "/api/v1/audit-events", headers, {}) == plain


def test_page_41_of_1030_users_is_found_by_its_ids(app, runner, client, world):
    """Past the real DEEP_OFFSET (1,000 rows): the last page, its rows and the exact total."""
    world.user("root@example.test", "platform_admin")
    result = runner.invoke(args=["seed-demo", "--tenants", "1", "--users", "1030", "--prefix", "deep",
                                 "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    with app.app_context():
        newest_first = [str(i) for i in db.session.scalars(select(User.id).order_by(User.created_at.desc(),
                                                                                      User.id.desc()))]
    response = client.get(USERS, headers=world.headers("root@example.test"), query_string={"page": 42})
    assert response.status_code == 200
    assert [item["id"] for item in response.json] == newest_first[1025:] and len(response.json) == 6
    assert response.headers["X-Total-Count"] == "1031"
