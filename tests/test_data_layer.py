"""Data layer: migrations both ways on the database under test (C14), foreign keys on SQLite (C15),
and a request that hit an IntegrityError does not poison the next ones (C16)."""
from __future__ import annotations

import os
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, insert, inspect, make_url, select, text, update
from sqlalchemy.exc import IntegrityError

from admin_api import PROJECT_ROOT
from admin_api.core.db import utcnow
from admin_api.extensions import db
from admin_api.tenants.models import Tenant
from admin_api.users.models import User, email_key
from tests.conftest import POSTGRES_URL, audit_actions, bearer

MIGRATIONS = PROJECT_ROOT / "migrations"


def revisions_base_to_head() -> list:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1, "migrations must have a single head"
    return list(reversed(list(script.walk_revisions("base", "heads"))))


@pytest.fixture
def scratch_database_url(tmp_path):
    """An empty database of the kind under test, separate from the session's schema."""
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    import psycopg

    name = f"admin_api_migrations_test_{os.getpid()}"
    server = make_url(POSTGRES_URL)
    dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _tables() -> set[str]:
    return set(inspect(db.engine).get_table_names())


def _current_revision() -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


# --- C14 -----------------------------------------------------------------------------

def test_every_migration_upgrades_and_downgrades(make_app, scratch_database_url):
    app = make_app(DATABASE_URL=scratch_database_url)
    revisions = revisions_base_to_head()
    model_tables = {table.name for table in db.metadata.sorted_tables}
    with app.app_context():
        assert _tables() == set()
        for revision in revisions:  # one step at a time, so each upgrade() is exercised on its own
            upgrade(revision=revision.revision)
            assert _current_revision() == revision.revision
        assert _tables() == model_tables | {"alembic_version"}

        for revision in reversed(revisions):  # and each downgrade()
            downgrade(revision=revision.down_revision or "base")
            assert _current_revision() == revision.down_revision
        assert _tables() - {"alembic_version"} == set()

        upgrade(revision="head")
        assert _current_revision() == revisions[-1].revision
        assert _tables() == model_tables | {"alembic_version"}
        db.session.remove()
        db.engine.dispose()
    # The re-created schema is one the app can serve from.
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    with app.app_context():
        user = User(email="x@example.test", email_key=email_key(None, "x@example.test"), display_name="X",
                    role="platform_admin", status="active")
        db.session.add(user)
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(User)) == 1
        db.session.remove()
        db.engine.dispose()


def test_models_and_migrations_agree(app):
    """What `flask db migrate` would autogenerate against a migrated database: nothing."""
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


# --- C15 -----------------------------------------------------------------------------

def _orphan_user_values() -> dict:
    tenant_id = uuid.uuid4()  # no such tenant
    now = utcnow()
    return {"id": uuid.uuid4(), "tenant_id": tenant_id, "email": "orphan@example.test",
            "email_key": email_key(tenant_id, "orphan@example.test"), "display_name": "Orphan", "role": "member",
            "status": "active", "must_change_password": False, "version": 1, "created_at": now, "updated_at": now}


def test_orphan_user_is_refused_through_the_orm(app):
    with app.app_context():
        db.session.add(User(**_orphan_user_values()))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_orphan_rows_are_refused_on_every_new_connection(app):
    """The foreign-key pragma is set per connection: check fresh connections, not only the first one."""
    from admin_api.auth.models import RevokedToken

    with app.app_context():
        for _ in range(3):
            db.engine.dispose()  # the next connect() opens a brand-new DBAPI connection
            with db.engine.connect() as connection:
                if connection.dialect.name == "sqlite":
                    assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
                with pytest.raises(IntegrityError):
                    connection.execute(insert(User.__table__).values(**_orphan_user_values()))
                connection.rollback()
                with pytest.raises(IntegrityError):
                    connection.execute(insert(RevokedToken.__table__).values(
                        jti=uuid.uuid4().hex, user_id=uuid.uuid4(), expires_at=utcnow(), created_at=utcnow(),
                        updated_at=utcnow()))
                connection.rollback()
        assert db.session.scalar(select(func.count()).select_from(User)) == 0


# --- C16 -----------------------------------------------------------------------------

def test_integrity_error_is_a_409_and_the_next_requests_succeed(std, client, app, monkeypatch):
    """Two creates racing past the duplicate check: the loser's INSERT hits the unique index."""
    from admin_api.users import service

    h = std["h"]["alice"]
    monkeypatch.setattr(service, "refuse_taken_email", lambda tenant_id, email: None)
    before = audit_actions(app)
    response = client.post("/api/v1/users", headers=h,
                           json={"email": "AMY@example.test", "display_name": "Twin", "role": "member"})
    assert response.status_code == 409 and response.is_json
    assert response.json["code"] == 409
    text_body = response.get_data(as_text=True)
    for leak in ("INSERT", "email_key", "UNIQUE", "duplicate key", "sqlite", "psycopg"):
        assert leak.lower() not in text_body.lower()
    assert audit_actions(app) == before  # the 409 changed nothing, not even the audit log
    # The same app (worker) and the same client go on working: reads and writes.
    listing = client.get("/api/v1/users", headers=h)
    assert listing.status_code == 200
    assert [u["email"] for u in listing.json].count("amy@example.test") == 1
    created = client.post("/api/v1/users", headers=h,
                          json={"email": "carl@example.test", "display_name": "Carl", "role": "member"})
    assert created.status_code == 201
    assert client.get("/api/v1/auth/me", headers=std["h"]["root"]).status_code == 200
    assert audit_actions(app) == before + ["user.create"]


# --- how a request's transaction ends (admin_api/core/transactions.py) -------------------------

def _leave_open(kind: str):
    """What a faulty view could leave in its transaction without committing."""
    if kind == "flushed insert":
        db.session.add(Tenant(name="Leaked", slug="leaked"))
        db.session.flush()
    elif kind == "pending insert":
        db.session.add(Tenant(name="Leaked", slug="leaked"))
    elif kind == "core update":
        db.session.execute(update(Tenant).values(name="Leaked"))
    elif kind == "text update":
        db.session.execute(text("UPDATE tenants SET name = 'Leaked'"))


@pytest.mark.parametrize("method, status", [("GET", 200), ("GET", 404), ("POST", 200)])
@pytest.mark.parametrize("kind", ["flushed insert", "pending insert", "core update", "text update"])
def test_a_transaction_left_open_with_a_write_is_rolled_back_whatever_the_method(make_app, world, kind, method, status):
    """A read that went well ends with COMMIT (psycopg keeps its prepared statements only then), so this guards
    the rule that makes that safe: a transaction that sent any write, or holds one unflushed, still rolls back."""
    app = make_app()
    world.tenant("acme", "Acme")
    app.add_url_rule("/probe", "probe", lambda: (_leave_open(kind), ({"ok": True}, status))[1], methods=[method])
    response = app.test_client().open("/probe", method=method)
    assert response.status_code == status
    with app.app_context():
        assert db.session.scalars(select(Tenant.name).order_by(Tenant.name)).all() == ["Acme"]


def test_reads_keep_the_prepared_statements_of_their_connection(world, client, app):
    """On PostgreSQL a read request ends with COMMIT: psycopg drops its prepared statements on every ROLLBACK."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("prepared statements are psycopg's")
    world.user("root@example.test", "platform_admin")
    headers = bearer(world.login("root@example.test")["access_token"])
    for _ in range(8):  # psycopg prepares a statement on its 6th use
        assert client.get("/api/v1/users", headers=headers).status_code == 200
    with app.app_context():
        prepared = db.session.scalars(text("SELECT statement FROM pg_prepared_statements")).all()
    assert any("FROM users" in statement for statement in prepared)


def kill_pooled_connections() -> int:
    """pg_terminate_backend on every other client connection to the test database; how many were killed."""
    from sqlalchemy import create_engine

    killer = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with killer.connect() as connection:
        killed = connection.scalar(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"))
    killer.dispose()
    return killed


@pytest.mark.postgres_only
def test_a_connection_the_database_dropped_is_replaced_before_a_request_uses_it(world, client, app):
    """A restart, a failover, a proxy or an operator dropped the pooled connections: the next requests succeed.

    Even right after the connection was used: a hostile review found one 500 per worker when pings were
    skipped for connections used less than a second before.
    """
    world.user("root@example.test", "platform_admin")
    headers = bearer(world.login("root@example.test")["access_token"])
    assert client.get("/api/v1/users", headers=headers).status_code == 200
    with app.app_context():
        assert db.engine.pool.checkedin() >= 1
    assert kill_pooled_connections() >= 1
    for _ in range(3):
        assert client.get("/api/v1/users", headers=headers).status_code == 200
    assert client.post("/api/v1/tenants", headers=headers, json={"name": "After", "slug": "after"}).status_code == 201
