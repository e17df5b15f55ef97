"""Test app per database: SQLite by default, PostgreSQL when TEST_DATABASE_URL is set.

The schema is built once per session by the real migrations; each test starts
from empty tables. Password hashing is made cheap so the suite stays fast.
"""
from __future__ import annotations

import logging
import os
import uuid

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from admin_api import create_app
from admin_api.core.security import hash_password
from admin_api.extensions import db
from admin_api.tenants.models import Tenant
from admin_api.users.models import User, email_key

PASSWORD = "correct horse battery staple"
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")


def pytest_collection_modifyitems(config, items):
    if POSTGRES_URL:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (TEST_DATABASE_URL)")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


def make_config(tmp_path_factory) -> dict:
    base = tmp_path_factory.getbasetemp()
    return {
        "APP_ENV": "testing",
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "JWT_SECRET_KEY": "test-jwt-secret-key-that-is-long-enough-0123456789",
        "DATABASE_URL": POSTGRES_URL or f"sqlite:///{base / 'test.db'}",
        "UPLOAD_FOLDER": str(base / "uploads"),
        "PASSWORD_HASH_TIME_COST": 1,
        "PASSWORD_HASH_MEMORY_COST": 1024,
        "PASSWORD_HASH_PARALLELISM": 1,
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture(scope="session")
def _migrated(tmp_path_factory):
    app = create_app(make_config(tmp_path_factory))
    with app.app_context():
        if POSTGRES_URL:
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade()
        db.session.remove()
        db.engine.dispose()
    return make_config(tmp_path_factory)


@pytest.fixture
def config(_migrated, tmp_path) -> dict:
    """The session's settings, with an uploads folder of the test's own."""
    return {**_migrated, "UPLOAD_FOLDER": str(tmp_path / "uploads")}


@pytest.fixture
def make_app(config):
    """Build more app instances on the same database (another 'worker'); all are disposed after the test."""
    built = []

    def build(**overrides):
        instance = create_app({**config, **overrides})
        built.append(instance)
        return instance

    yield build
    for instance in built:
        with instance.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    app = make_app()
    with app.app_context():
        empty_tables()
    return app


def empty_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(text(f"DELETE FROM {table}"))
    db.session.commit()


@pytest.fixture
def app_log(make_app, caplog):
    """An app, and every record it logs (admin_api.* does not propagate to the root logger, so hook it directly)."""
    app = make_app(LOG_LEVEL="INFO")
    logger = logging.getLogger("admin_api")
    logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.INFO)
    try:
        yield app, caplog
    finally:
        logger.removeHandler(caplog.handler)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class World:
    """Small factories and sign-in helpers for the tests."""

    def __init__(self, app, client):
        self.app = app
        self.client = client
        self._hash = None

    def tenant(self, slug: str = "tenant-a", name: str | None = None, status: str = "active") -> Tenant:
        with self.app.app_context():
            tenant = Tenant(name=name or slug.title(), slug=slug, status=status)
            db.session.add(tenant)
            db.session.commit()
            db.session.refresh(tenant)
            db.session.expunge(tenant)
            return tenant

    def user(self, email: str, role: str = "member", tenant: Tenant | None = None, password: str = PASSWORD,
             status: str = "active", display_name: str | None = None) -> User:
        with self.app.app_context():
            if self._hash is None:
                self._hash = hash_password(PASSWORD)
            tenant_id = tenant.id if tenant is not None else None
            user = User(tenant_id=tenant_id, email=email.lower(), email_key=email_key(tenant_id, email.lower()),
                        display_name=display_name or email.split("@")[0].title(), role=role, status=status,
                        password_hash=self._hash if password == PASSWORD else hash_password(password))
            db.session.add(user)
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    def login(self, email: str, password: str = PASSWORD, tenant: str | None = None) -> dict:
        body = {"email": email, "password": password}
        if tenant:
            body["tenant"] = tenant
        response = self.client.post("/api/v1/auth/login", json=body)
        assert response.status_code == 200, response.json
        return response.json

    def mint(self, user: User) -> dict:
        """Tokens for a user, without a sign-in (no throttle row, no audit event)."""
        from admin_api.core.security import issue_tokens

        with self.app.app_context():
            return issue_tokens(db.session.get(User, user.id))

    def headers(self, email: str, password: str = PASSWORD) -> dict:
        return bearer(self.login(email, password)["access_token"])

    def standard(self):
        """tenant-a and tenant-b, each with an admin and a member, plus a platform admin."""
        a, b = self.tenant("tenant-a"), self.tenant("tenant-b")
        people = {
            "root": self.user("root@example.test", "platform_admin"),
            "alice": self.user("alice@example.test", "tenant_admin", a),
            "amy": self.user("amy@example.test", "member", a),
            "bob": self.user("bob@example.test", "tenant_admin", b),
            "bea": self.user("bea@example.test", "member", b),
        }
        return a, b, people


def login_status(client, email: str, password: str = PASSWORD) -> int:
    """The status of a sign-in attempt (200 or the uniform 401)."""
    return client.post("/api/v1/auth/login", json={"email": email, "password": password}).status_code


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def world(app, client) -> World:
    return World(app, client)


@pytest.fixture
def std(world, request):
    """The standard world with signed-in headers per person.

    The tokens are minted directly, as a sign-in would (the sign-in itself is tested in test_auth): five HTTP
    sign-ins per test were the largest part of the suite's time. Tests marked `real_sign_ins` sign in over
    HTTP (they read the sign-ins' audit events).
    """
    a, b, people = world.standard()
    if request.node.get_closest_marker("real_sign_ins"):
        headers = {name: world.headers(user.email) for name, user in people.items()}
    else:
        headers = {name: bearer(world.mint(user)["access_token"]) for name, user in people.items()}
    return {"a": a, "b": b, "people": people, "h": headers, "world": world}


def audit_actions(app, **filters) -> list[str]:
    from sqlalchemy import select

    from admin_api.audit.models import AuditEvent

    with app.app_context():
        stmt = select(AuditEvent.action).order_by(AuditEvent.occurred_at)
        for key, value in filters.items():
            stmt = stmt.where(getattr(AuditEvent, key) == value)
        return list(db.session.scalars(stmt))


def events_of(app, action: str):
    """The audit events of one action, oldest first, detached from the session."""
    from sqlalchemy import select

    from admin_api.audit.models import AuditEvent

    with app.app_context():
        found = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                        .order_by(AuditEvent.occurred_at)))
        for event in found:
            db.session.expunge(event)
        return found


def new_id() -> str:
    return str(uuid.uuid4())


def in_threads(count: int, make_app, fn) -> list:
    """fn(client) in `count` threads at once, each with an app instance of its own (another worker); the results."""
    import threading

    clients = [make_app().test_client() for _ in range(count)]  # built first: building apps is not thread-safe
    start, results = threading.Barrier(count), []

    def run(client):
        start.wait(timeout=10)
        results.append(fn(client))

    threads = [threading.Thread(target=run, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results
