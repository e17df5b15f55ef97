"""Flask commands for operators: `flask --app wsgi <command> --help`."""
from __future__ import annotations

import os
import secrets
import sys

import click
from flask.cli import with_appcontext

from admin_api.core.errors import AppError


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _service_call(fn, **kwargs):
    """Run a service function; its refusal becomes a one-line error and exit code 1."""
    try:
        return fn(**kwargs)
    except AppError as exc:
        detail = "; ".join(f"{k}: {' '.join(v) if isinstance(v, list) else v}" for k, v in (exc.errors or {}).items())
        fail(exc.message + (f" ({detail})" if detail else ""))


@click.command("create-admin")
@click.option("--email", default=lambda: os.environ.get("ADMIN_EMAIL", "admin@example.com"), show_default="ADMIN_EMAIL or admin@example.com",
              help="Email of the platform admin.")
@click.option("--password", default=lambda: os.environ.get("ADMIN_PASSWORD"), show_default="ADMIN_PASSWORD or generated",
              help="Password; generated and printed once when not given.")
@click.option("--if-missing", is_flag=True, help="Do nothing when an active platform admin already exists.")
@with_appcontext
def create_admin(email: str, password: str | None, if_missing: bool) -> None:
    """Create a platform admin (the first account of a new installation)."""
    from admin_api.users import service

    if if_missing and (existing := service.first_active_platform_admin()) is not None:
        click.echo(f"A platform admin exists: {existing.email} (use its password, or `flask create-admin` for another).")
        return
    generated = password is None
    password = password or secrets.token_urlsafe(18)
    user = _service_call(service.bootstrap_platform_admin, email=email.strip().lower(), password=password)
    click.echo(f"Created platform admin {user.email}.")
    if generated:
        click.echo(f"Its password, shown only this once: {password}")
    click.echo("Sign in: POST /api/v1/auth/login {\"email\": ..., \"password\": ...}, or in Swagger UI at /api/docs.")


@click.command("seed-demo")
@click.option("--tenants", "tenant_count", type=click.IntRange(1, 10_000), default=3, show_default=True,
              help="Number of demo tenants.")
@click.option("--users", "user_count", type=click.IntRange(0, 10_000_000), default=30, show_default=True,
              help="Total number of demo users, spread evenly over the tenants (the first of each is its tenant admin).")
@click.option("--prefix", default="demo", show_default=True, help="Tenant slugs are PREFIX-1, PREFIX-2, ...")
@click.option("--password", default="demo-password-2026", show_default=True, help="Password of every demo user.")
@click.option("--allow-production", is_flag=True, help="Seed even when APP_ENV is production.")
@with_appcontext
def seed_demo(tenant_count: int, user_count: int, prefix: str, password: str, allow_production: bool) -> None:
    """Fill the database with demo tenants and users (bulk inserts; one password hash reused)."""
    import re

    from admin_api.tenants.schemas import SLUG_PATTERN
    from admin_api.users import seed

    # The slugs (and the emails made from them) bypass the API's schemas: check them here, before anything
    # is written (a bad prefix used to store slugs the API refuses, and crash on PostgreSQL's length limit).
    if not re.fullmatch(SLUG_PATTERN, f"{prefix}-{tenant_count}"):
        fail(f"--prefix {prefix!r} does not make valid tenant slugs ({prefix}-N): use lower-case letters, digits "
             f"and '-', at most {62 - len(str(tenant_count))} characters")
    from flask import current_app

    if current_app.config["APP_ENV"] == "production" and not allow_production:
        fail("refusing to seed demo accounts (one shared, printed password) in production; "
             "pass --allow-production if you really mean it")
    _service_call(seed.check_demo_password, password=password)
    with click.progressbar(length=user_count, label="Inserting users") as bar:
        result = _service_call(seed.seed_demo, tenant_count=tenant_count, user_count=user_count, prefix=prefix,
                               password=password, progress=bar.update)
    click.echo(f"Created {result['tenants']} tenants and {result['users']} users.")
    click.echo(f"Demo logins (password for all: {password}):")
    for login in result["logins"][:5]:
        click.echo(f"  {login['email']}  tenant {login['tenant']}  ({login['role']})")


@click.command("purge-expired")
@with_appcontext
def purge_expired() -> None:
    """Delete finished sign-in throttle windows and revocations of already expired tokens (run it daily)."""
    from admin_api.auth import service

    removed = service.purge_expired()
    click.echo(f"Removed {removed['throttle_windows']} throttle windows and {removed['revoked_tokens']} "
               "expired token revocations.")


@click.group("users")
def users_group() -> None:
    """Operator chores on accounts: restore a disabled user, reset a password."""


TENANT_OPTION = click.option(
    "--tenant", "tenant_slug", metavar="SLUG",
    help='Tenant slug, when the email has accounts in several tenants ("platform" for a platform admin).')


@users_group.command("restore")
@click.argument("email")
@TENANT_OPTION
@with_appcontext
def restore_user(email: str, tenant_slug: str | None) -> None:
    """Restore the disabled user EMAIL (its tenant must not be deleted)."""
    from admin_api.users import service

    user = _service_call(service.restore_user_as_operator, email=email, tenant_slug=tenant_slug)
    click.echo(f"Restored {user.email}; it can sign in again (tokens from before it was disabled stay dead).")


@users_group.command("reset-password")
@click.argument("email")
@TENANT_OPTION
@click.option("--password", help="The new password; generated and printed once when not given.")
@click.option("--permanent", is_flag=True, help="Do not make the user change the password at its next sign-in.")
@click.option("--token", "issue_token", is_flag=True,
              help="Issue a one-time reset token (printed once) instead of setting a password.")
@with_appcontext
def reset_password(email: str, tenant_slug: str | None, password: str | None, permanent: bool, issue_token: bool) -> None:
    """Reset the password of EMAIL; every token of that user is revoked."""
    from admin_api.users import service

    if issue_token and (password or permanent):
        fail("--token issues a reset token: it does not go with --password or --permanent")
    generated = password is None and not issue_token
    if generated:
        password = secrets.token_urlsafe(18)
    result = _service_call(service.reset_password_as_operator, email=email, tenant_slug=tenant_slug,
                           new_password=password, temporary=not permanent)
    user = result["user"]
    if issue_token:
        click.echo(f"Reset token for {user.email}, shown only this once (valid until {result['expires_at']:%Y-%m-%dT%H:%M:%SZ}):")
        click.echo(result["reset_token"])
        click.echo('Use it: POST /api/v1/auth/password-reset {"token": ..., "new_password": ...}')
        return
    click.echo(f"Password of {user.email} reset; all its sessions are revoked.")
    if generated:
        click.echo(f"Its new password, shown only this once: {password}")
    if not permanent:
        click.echo("It must choose a new one at its next sign-in (POST /api/v1/auth/change-password).")


@click.group("invitations")
def invitations_group() -> None:
    """Operator chores on invitations: invite an address into a tenant."""


@invitations_group.command("create")
@click.argument("email")
@click.option("--tenant", "tenant_slug", metavar="SLUG", required=True, help="Slug of the tenant to invite into.")
@click.option("--role", type=click.Choice(["member", "tenant_admin"]), default="member", show_default=True)
@with_appcontext
def create_invitation(email: str, tenant_slug: str, role: str) -> None:
    """Invite EMAIL into a tenant and print the accept token (shown only this once)."""
    from admin_api.invitations import service

    issued = _service_call(service.create_invitation_as_operator, email=email, tenant_slug=tenant_slug, role=role)
    click.echo(f"Invited {issued.email} into {tenant_slug} as {issued.role} "
               f"(valid until {issued.expires_at:%Y-%m-%dT%H:%M:%SZ}). Accept token, shown only this once:")
    click.echo(issued.token)
    click.echo(f'Accept: POST /api/v1/invitations/{issued.id}/accept {{"token": ..., "password": ..., "display_name": ...}}')


@click.group("policies")
def policies_group() -> None:
    """Cedar policies: check a policy file before registering it."""


@policies_group.command("check")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--tenant", "tenant_slug", metavar="SLUG", help="Check it as a policy of this tenant (default: platform-wide).")
@with_appcontext
def check_policy(file, tenant_slug: str | None) -> None:
    """Validate the Cedar policies in FILE against the platform schema, with the API's messages."""
    from admin_api.policies import service

    try:
        source = file.read()
    except UnicodeDecodeError:
        fail(f"{file.name} is not UTF-8 text (Cedar policies are)")
    found, scope = _service_call(service.check_file, source=source, tenant_slug=tenant_slug)
    for problem in found:
        where = f"{problem.line}:{problem.column}:" if problem.line else ""
        click.echo(f"{file.name}:{where} {problem.message}", err=True)
    if found:
        sys.exit(1)
    click.echo(f"{file.name}: valid ({scope}).")


def register(app) -> None:
    for command in (create_admin, seed_demo, purge_expired, users_group, invitations_group, policies_group):
        app.cli.add_command(command)
