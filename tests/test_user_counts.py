"""User list totals come from counts the database keeps (user_counts, triggers of migration 0007).

Whatever writes users (the API, the bulk seed, an operator's SQL), the counts
must equal the rows, and the totals the lists answer must follow at once.
"""
import uuid

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import delete, func, insert, select, text

from admin_api.core.db import utcnow
from admin_api.extensions import db
from admin_api.tenants.models import Tenant
from admin_api.users.models import User, UserCount, email_key
from tests.conftest import PASSWORD
from tests.test_data_layer import scratch_database_url  # noqa: F401 (a fixture)

USERS = "/api/v1/users"


def kept_counts() -> dict:
    return {row.scope_id: row.users for row in db.session.execute(select(UserCount.scope_id, UserCount.users))}


def counted_rows() -> dict:
    rows = db.session.execute(select(User.tenant_id, func.count()).group_by(User.tenant_id)).all()
    return {tenant_id or UserCount.PLATFORM: n for tenant_id, n in rows}


def assert_counts_match(app) -> dict:
    with app.app_context():
        kept, counted = kept_counts(), counted_rows()
        db.session.remove()
    assert {scope: n for scope, n in kept.items() if n} == counted
    return counted


def raw_user(tenant_id, email: str) -> dict:
    now = utcnow()
    return {"id": uuid.uuid4(), "tenant_id": tenant_id, "email": email, "email_key": email_key(tenant_id, email),
            "display_name": "Raw", "role": "member" if tenant_id else "platform_admin", "status": "active",
            "must_change_password": False, "version": 1, "created_at": now, "updated_at": now}


def total(client, headers, **query) -> str:
    response = client.get(USERS, headers=headers, query_string=query)
    assert response.status_code == 200, response.json
    return response.headers["X-Total-Count"]


def test_counts_follow_every_writer_and_the_totals_follow_the_counts(world, app, client):
    a, b, people = world.standard()
    root, alice = world.headers("root@example.test"), world.headers("alice@example.test")
    assert (total(client, root), total(client, alice)) == ("5", "2")

    for n in range(3):  # through the API, in two tenants and on the platform
        assert client.post(USERS, headers=alice, json={"email": f"new{n}@a.test", "display_name": "N",
                                                        "role": "member"}).status_code == 201
    assert client.post(USERS, headers=root, json={"email": "b1@b.test", "display_name": "B",
                                                   "role": "member", "tenant_id": str(b.id)}).status_code == 201
    assert client.post(USERS, headers=root, json={"email": "op@example.test", "display_name": "Op",
                                                   "role": "platform_admin"}).status_code == 201
    counted = assert_counts_match(app)
    assert counted == {a.id: 5, b.id: 3, UserCount.PLATFORM: 2}
    assert (total(client, root), total(client, alice)) == ("10", "5")
    assert total(client, root, tenant_id=str(b.id)) == "3"

    # An operator's SQL: a multi-row INSERT and a DELETE, both counted.
    with app.app_context():
        db.session.execute(insert(User), [raw_user(a.id, f"raw{n}@a.test") for n in range(4)]
                           + [raw_user(None, "rawop@example.test")])
        db.session.execute(delete(User).where(User.email.in_(["raw0@a.test", "bea@example.test"])))
        db.session.commit()
    assert assert_counts_match(app) == {a.id: 8, b.id: 2, UserCount.PLATFORM: 3}
    assert (total(client, root), total(client, alice)) == ("13", "8")


def test_disabled_users_still_count_and_filters_count_rows(world, app, client):
    """Lists show every status unless filtered (DESIGN.md): a soft delete leaves the total alone."""
    _a, _b, people = world.standard()
    root, alice = world.headers("root@example.test"), world.headers("alice@example.test")
    assert client.delete(f"{USERS}/{people['amy'].id}", headers=alice).status_code == 204
    assert (total(client, root), total(client, alice)) == ("5", "2")
    assert total(client, alice, status="active") == "1"
    assert total(client, alice, status="disabled") == "1"
    assert total(client, root, role="member", q="b") == "1"
    assert_counts_match(app)


def test_a_write_rolled_back_is_not_counted(world, app, client):
    a, _b, _people = world.standard()
    with app.app_context():
        db.session.execute(insert(User), [raw_user(a.id, "gone@a.test")])
        assert kept_counts()[a.id] == 3  # the transaction sees its own insert counted
        db.session.rollback()
    assert assert_counts_match(app)[a.id] == 2
    assert total(client, world.headers("root@example.test")) == "5"


def test_a_refused_create_is_not_counted(world, app, client):
    """A duplicate email (409) and a bad body (422) change no count."""
    world.standard()
    alice = world.headers("alice@example.test")
    assert client.post(USERS, headers=alice, json={"email": "AMY@example.test", "display_name": "A",
                                                    "role": "member"}).status_code == 409
    assert client.post(USERS, headers=alice, json={"email": "x@a.test", "display_name": "",
                                                    "role": "member"}).status_code == 422
    assert total(client, alice) == "2"
    assert_counts_match(app)


def test_seed_demo_is_counted(app, runner):
    result = runner.invoke(args=["seed-demo", "--tenants", "3", "--users", "31", "--prefix", "cnt",
                                 "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    counted = assert_counts_match(app)
    assert sorted(counted.values()) == [10, 10, 11]


@pytest.mark.postgres_only
def test_a_bulk_seed_rewrites_a_count_row_per_statement_not_per_user(app, runner):
    """psycopg runs an executemany as one statement per row, each firing the count trigger: a 1,000,000-user seed
    left 1,000,000 versions of the count rows, and every unfiltered list read past them (4 ms a request)."""
    result = runner.invoke(args=["seed-demo", "--tenants", "2", "--users", "6000", "--prefix", "bulk",
                                 "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    assert sorted(assert_counts_match(app).values()) == [3000, 3000]
    with app.app_context():
        pages = db.session.scalar(text("SELECT pg_relation_size('user_counts') / current_setting('block_size')::int"))
    assert pages <= 2  # one version per statement: 8 or so rows, not 6,000 (about 45 pages)


def test_the_migration_counts_the_users_already_there(make_app, scratch_database_url):  # noqa: F811
    app = make_app(DATABASE_URL=scratch_database_url)
    with app.app_context():
        upgrade(revision="0006")
        tenant_id = uuid.uuid4()
        now = utcnow()
        db.session.execute(insert(Tenant).values(id=tenant_id, name="T", slug="t", status="active", version=1,
                                                 created_at=now, updated_at=now))
        db.session.execute(insert(User), [raw_user(tenant_id, f"u{n}@t.test") for n in range(3)]
                           + [raw_user(None, "op@example.test")])
        db.session.commit()
        upgrade(revision="head")
        assert kept_counts() == {tenant_id: 3, UserCount.PLATFORM: 1}
        db.session.execute(insert(User), [raw_user(tenant_id, "u9@t.test")])  # and the triggers take over
        db.session.commit()
        assert kept_counts() == {tenant_id: 4, UserCount.PLATFORM: 1}
        db.session.commit()  # ends the read: DROP TABLE would wait on it
        downgrade(revision="0006")
        db.session.execute(insert(User), [raw_user(tenant_id, "u10@t.test")])  # no trigger left behind
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


@pytest.mark.postgres_only
def test_concurrent_creates_in_one_tenant_are_all_counted(make_app, world):
    """Two workers adding users to one tenant at once: each waits its turn on the count's row, none is lost."""
    import threading

    a = world.tenant("tenant-a")
    apps = [make_app(), make_app()]
    errors = []

    def add(app, n):
        try:
            with app.app_context():
                for k in range(25):
                    db.session.execute(insert(User), [raw_user(a.id, f"c{n}-{k}@a.test")])
                    db.session.commit()
                db.session.remove()
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=add, args=(app, n)) for n, app in enumerate(apps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert assert_counts_match(apps[0]) == {a.id: 50}
