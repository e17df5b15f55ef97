"""Operator commands: flask create-admin, flask seed-demo, flask users restore / reset-password."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from admin_api.audit.models import AuditEvent
from admin_api.extensions import db
from admin_api.tenants.models import Tenant
from admin_api.users.models import User
from tests.conftest import PASSWORD, audit_actions, login_status


def one_line_error(result) -> str:
    """A refusal: non-zero exit, exactly one line on stderr, no traceback, nothing on stdout."""
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


# --- create-admin --------------------------------------------------------------------

def test_create_admin_generates_and_prints_the_password_once(runner, client, app):
    result = runner.invoke(args=["create-admin", "--email", "Ops@Example.test"])
    assert result.exit_code == 0, result.output
    match = re.search(r"shown only this once: (\S+)", result.stdout)
    assert match, result.stdout
    password = match.group(1)
    assert len(password) >= 12
    assert result.stdout.count(password) == 1
    assert "ops@example.test" in result.stdout
    assert login_status(client, "ops@example.test", password) == 200
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "ops@example.test"))
        assert user.role == "platform_admin" and user.tenant_id is None and user.status == "active"
        changes = [str(e.changes) for e in db.session.scalars(select(AuditEvent))]
    assert audit_actions(app) == ["user.create", "auth.login"]
    assert all(password not in text for text in changes)


def test_create_admin_with_a_given_password_does_not_print_it(runner, client):
    chosen = "a-long-operator-passphrase-2026"
    result = runner.invoke(args=["create-admin", "--email", "ops@example.test", "--password", chosen])
    assert result.exit_code == 0, result.output
    assert chosen not in result.output and "shown only this once" not in result.output
    assert login_status(client, "ops@example.test", chosen) == 200


def test_create_admin_reads_the_environment(runner, client, monkeypatch):
    monkeypatch.setenv("ADMIN_EMAIL", "env-admin@example.test")
    monkeypatch.setenv("ADMIN_PASSWORD", "environment-passphrase-42")
    result = runner.invoke(args=["create-admin"])
    assert result.exit_code == 0, result.output
    assert "environment-passphrase-42" not in result.output
    assert login_status(client, "env-admin@example.test", "environment-passphrase-42") == 200


def test_create_admin_if_missing_keeps_the_existing_admin(runner, world, app):
    world.user("root@example.test", "platform_admin")
    result = runner.invoke(args=["create-admin", "--if-missing", "--email", "other@example.test"])
    assert result.exit_code == 0, result.output
    assert "root@example.test" in result.stdout
    assert "shown only this once" not in result.stdout
    assert count(app, User) == 1
    assert audit_actions(app) == []


def test_create_admin_if_missing_creates_when_there_is_none(runner, world, app):
    world.tenant("tenant-a")
    result = runner.invoke(args=["create-admin", "--if-missing", "--email", "first@example.test"])
    assert result.exit_code == 0, result.output
    assert "shown only this once" in result.stdout
    assert count(app, User, User.role == "platform_admin") == 1


def test_create_admin_if_missing_ignores_a_disabled_admin(runner, world, app):
    world.user("gone@example.test", "platform_admin", status="disabled")
    result = runner.invoke(args=["create-admin", "--if-missing", "--email", "new@example.test"])
    assert result.exit_code == 0, result.output
    assert count(app, User, User.role == "platform_admin", User.status == "active") == 1


@pytest.mark.parametrize("args, mentions", [
    (["--email", "not-an-email"], "email"),
    (["--email", "a@b@example.test"], "email"),
    (["--email", ""], "email"),
    (["--email", "x@example.test", "--password", "short"], "password"),
    (["--email", "x@example.test", "--password", "password1234"], "password"),
    (["--email", "longenough@example.test", "--password", "LongEnough@example.test"], "password"),
])
def test_create_admin_refuses_bad_input_in_one_line(runner, app, args, mentions):
    result = runner.invoke(args=["create-admin", *args])
    line = one_line_error(result)
    assert mentions in line.lower()
    assert result.stdout == ""
    assert count(app, User) == 0 and audit_actions(app) == []


def test_create_admin_refuses_a_taken_email(runner, world, app):
    world.user("root@example.test", "platform_admin")
    result = runner.invoke(args=["create-admin", "--email", "ROOT@example.test", "--password", "another-passphrase-9"])
    assert "exists" in one_line_error(result)
    assert count(app, User) == 1


# --- seed-demo ----------------------------------------------------------------------------

def test_seed_demo_creates_tenants_and_users_and_prints_logins(runner, client, app):
    result = runner.invoke(args=["seed-demo", "--tenants", "2", "--users", "10"])
    assert result.exit_code == 0, result.output
    assert "Created 2 tenants and 10 users." in result.stdout
    assert count(app, Tenant, Tenant.slug.in_(["demo-1", "demo-2"])) == 2
    assert count(app, User) == 10
    assert count(app, User, User.role == "tenant_admin") == 2
    logins = re.findall(r"^\s+(\S+@\S+)\s+tenant (\S+)", result.stdout, re.MULTILINE)
    assert {email for email, _ in logins} == {"admin@demo-1.example.test", "admin@demo-2.example.test"}
    password = re.search(r"password for all: (\S+?)\)", result.stdout).group(1)
    for email, _ in logins:  # the printed logins work, through the API
        assert login_status(client, email, password) == 200
    assert "demo.seed" in audit_actions(app)


def test_seed_demo_again_with_the_same_prefix_is_refused(runner, app):
    assert runner.invoke(args=["seed-demo", "--tenants", "2", "--users", "10"]).exit_code == 0
    result = runner.invoke(args=["seed-demo", "--tenants", "2", "--users", "10"])
    assert "prefix" in one_line_error(result)
    assert count(app, Tenant) == 2 and count(app, User) == 10
    other = runner.invoke(args=["seed-demo", "--tenants", "1", "--users", "3", "--prefix", "other"])
    assert other.exit_code == 0, other.output
    assert count(app, Tenant) == 3 and count(app, User) == 13


def test_seed_demo_with_a_custom_password(runner, client):
    result = runner.invoke(args=["seed-demo", "--tenants", "1", "--users", "2", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    assert login_status(client, "user1@demo-1.example.test", PASSWORD) == 200


@pytest.mark.parametrize("args, mentions", [
    (["--password", "short"], "password"),
    (["--prefix", "Bad Prefix"], "prefix"),
    (["--prefix", "-dash"], "prefix"),
    (["--prefix", "p" * 70], "prefix"),
])
def test_seed_demo_refuses_bad_input_in_one_line(runner, app, args, mentions):
    result = runner.invoke(args=["seed-demo", "--tenants", "2", "--users", "4", *args])
    assert mentions in one_line_error(result).lower()
    assert count(app, Tenant) == 0 and count(app, User) == 0


@pytest.mark.parametrize("args", [["--tenants", "0"], ["--users", "-1"], ["--tenants", "many"]])
def test_seed_demo_refuses_bad_counts(runner, app, args):
    result = runner.invoke(args=["seed-demo", *args])
    assert result.exit_code == 2  # click's usage error
    assert "Invalid value" in result.stderr
    assert count(app, Tenant) == 0


# --- help ------------------------------------------------------------------------------------

@pytest.mark.parametrize("command, options", [
    ("create-admin", ["--email", "--password", "--if-missing"]),
    ("seed-demo", ["--tenants", "--users", "--prefix", "--password", "--allow-production"]),
    ("purge-expired", []),
    ("users restore", ["EMAIL", "--tenant"]),
    ("users reset-password", ["EMAIL", "--tenant", "--password", "--permanent", "--token"]),
])
def test_help(runner, app, command, options):
    result = runner.invoke(args=[*command.split(), "--help"])
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage:") and command in result.stdout.splitlines()[0]
    for option in options:
        assert option in result.stdout
    assert count(app, User) == 0  # --help does nothing else


def test_commands_are_listed_in_the_top_level_help(runner):
    result = runner.invoke(args=["--help"])
    assert result.exit_code == 0
    assert "create-admin" in result.stdout and "seed-demo" in result.stdout and "users" in result.stdout


def test_seed_demo_sees_a_taken_slug_beyond_the_first_thousand(runner, world, app):
    world.tenant("zq-1001")
    result = runner.invoke(args=["seed-demo", "--prefix", "zq", "--tenants", "1001", "--users", "0"])
    assert "zq-1001" in one_line_error(result)
    assert count(app, Tenant) == 1


def test_seed_demo_refuses_production_unless_asked(runner, app):
    app.config["APP_ENV"] = "production"
    assert "production" in one_line_error(runner.invoke(args=["seed-demo", "--tenants", "1", "--users", "2"]))
    assert count(app, User) == 0
    result = runner.invoke(args=["seed-demo", "--tenants", "1", "--users", "2", "--allow-production"])
    assert result.exit_code == 0, result.output
    assert count(app, User) == 2


def test_seed_demo_refuses_a_weak_password_before_any_progress(runner, app):
    result = runner.invoke(args=["seed-demo", "--tenants", "1", "--users", "2", "--password", "short"])
    assert "password" in one_line_error(result).lower()
    assert "Inserting" not in result.output




# --- users restore / reset-password --------------------------------------------------------------

def test_users_restore(runner, world, client, app):
    a = world.tenant("tenant-a")
    world.user("dan@example.test", "member", a, status="disabled")
    result = runner.invoke(args=["users", "restore", "Dan@Example.test"])
    assert result.exit_code == 0, result.output
    assert "Restored dan@example.test" in result.stdout
    assert login_status(client, "dan@example.test", PASSWORD) == 200
    with app.app_context():
        [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "user.restore")).all()
        assert event.actor_email == "cli" and event.actor_id is None and event.tenant_id == a.id


def test_users_restore_names_the_tenant_of_a_shared_email(runner, world, app):
    a, b = world.tenant("tenant-a"), world.tenant("tenant-b")
    world.user("sam@example.test", "member", a, status="disabled")
    in_b = world.user("sam@example.test", "member", b, status="disabled")
    assert "several tenants" in one_line_error(runner.invoke(args=["users", "restore", "sam@example.test"]))
    result = runner.invoke(args=["users", "restore", "sam@example.test", "--tenant", "tenant-b"])
    assert result.exit_code == 0, result.output
    assert count(app, User, User.status == "active") == 1
    assert count(app, User, User.id == in_b.id, User.status == "active") == 1


@pytest.mark.parametrize("setup, args, mentions", [
    ("active", ["users", "restore", "dan@example.test"], "not disabled"),
    ("tenant deleted", ["users", "restore", "dan@example.test"], "restore it first"),
    ("active", ["users", "restore", "nobody@example.test"], "no user"),
    ("active", ["users", "restore", "dan@example.test", "--tenant", "tenant-b"], "no user"),
    ("active", ["users", "restore", "not-an-email"], "email"),
    ("disabled", ["users", "reset-password", "dan@example.test"], "restore it first"),
    ("tenant deleted", ["users", "reset-password", "dan@example.test"], "restore it first"),
    ("active", ["users", "reset-password", "dan@example.test", "--password", "short"], "password"),
    ("active", ["users", "reset-password", "dan@example.test", "--token", "--permanent"], "--token"),
])
def test_users_commands_refuse_in_one_line_and_change_nothing(runner, world, app, setup, args, mentions):
    a = world.tenant("tenant-a", status="deleted" if setup == "tenant deleted" else "active")
    world.user("dan@example.test", "member", a, status="disabled" if setup in ("disabled", "tenant deleted") else "active")
    with app.app_context():
        before = db.session.execute(select(User.status, User.password_hash, User.version)).all()
    assert mentions in one_line_error(runner.invoke(args=args)).lower()
    with app.app_context():
        assert db.session.execute(select(User.status, User.password_hash, User.version)).all() == before
    assert audit_actions(app) == []


def test_users_reset_password_generates_a_temporary_password_shown_once(runner, world, client, app):
    a = world.tenant("tenant-a")
    world.user("dan@example.test", "member", a)
    result = runner.invoke(args=["users", "reset-password", "dan@example.test"])
    assert result.exit_code == 0, result.output
    password = re.search(r"shown only this once: (\S+)", result.stdout).group(1)
    assert result.stdout.count(password) == 1
    assert login_status(client, "dan@example.test", PASSWORD) == 401
    signed_in = client.post("/api/v1/auth/login", json={"email": "dan@example.test", "password": password})
    assert signed_in.status_code == 200 and signed_in.json["user"]["must_change_password"] is True
    with app.app_context():
        [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "user.reset_password")).all()
        assert event.actor_email == "cli" and password not in str(event.changes)


def test_users_reset_password_with_a_chosen_permanent_password(runner, world, client):
    world.user("ops@example.test", "platform_admin")
    chosen = "an operator-chosen passphrase"
    result = runner.invoke(args=["users", "reset-password", "ops@example.test", "--password", chosen, "--permanent"])
    assert result.exit_code == 0, result.output
    assert chosen not in result.output
    signed_in = client.post("/api/v1/auth/login", json={"email": "ops@example.test", "password": chosen})
    assert signed_in.json["user"]["must_change_password"] is False


def test_users_reset_password_can_issue_a_reset_token(runner, world, client):
    world.user("ops@example.test", "platform_admin")
    result = runner.invoke(args=["users", "reset-password", "ops@example.test", "--token"])
    assert result.exit_code == 0, result.output
    token = result.stdout.splitlines()[1].strip()
    assert result.stdout.count(token) == 1
    assert login_status(client, "ops@example.test", PASSWORD) == 200  # works until the token is used
    chosen = "chosen through the reset token"
    assert client.post("/api/v1/auth/password-reset", json={"token": token, "new_password": chosen}).status_code == 204
    assert login_status(client, "ops@example.test", chosen) == 200
