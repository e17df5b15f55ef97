import uuid

from flask import request
from flask.views import MethodView

from admin_api.core.api import CREATED_HEADERS, LIST_HEADERS, OPTIONAL_IF_MATCH, Blueprint, created
from admin_api.core.pagination import page_response
from admin_api.core.security import auth_required, current_actor
from admin_api.users import service
from admin_api.users.schemas import (
    PasswordResetRequestSchema,
    PasswordResetResultSchema,
    UserCreateSchema,
    UserQueryArgsSchema,
    UserSchema,
    UserUpdateSchema,
)

blp = Blueprint(
    "users", __name__, url_prefix="/api/v1/users",
    description=(
        "Users. Emails are case-insensitive and unique per tenant among all users, disabled ones included. "
        "Another tenant's user answers 404, exactly like a missing one. Disabling is soft and undone by restore; "
        "while a user's tenant is deleted, the user cannot be created, changed, restored or have its password reset "
        "(409), but can still be disabled. The list's total is always exact: without status, role or q it is "
        "the count the database keeps per tenant, read in constant time however many users there are."
    ),
)


@blp.route("")
class Users(MethodView):
    decorators = [auth_required()]

    @blp.arguments(UserQueryArgsSchema, location="query")
    @blp.response(200, UserSchema(many=True), headers=LIST_HEADERS)
    @blp.error(403, "Forbidden")
    @blp.error(404, "tenant_id names a tenant you cannot see")
    def get(self, args):
        """List users"""
        return page_response(service.list_users(actor=current_actor(), args=args))

    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema, headers=CREATED_HEADERS)
    @blp.error(403, "Forbidden (e.g. a tenant admin creating a platform admin)")
    @blp.error(404, "tenant_id names a tenant you cannot see")
    @blp.error(409, "Email already used in the tenant (body names the existing user) or tenant deleted")
    def post(self, data):
        """Create a user"""
        user = service.create_user(actor=current_actor(), **data)
        return created(user, blp.url_prefix)


@blp.route("/<uuid:user_id>")
class UserById(MethodView):
    decorators = [auth_required()]

    @blp.etag
    @blp.response(200, UserSchema)
    @blp.error(404, "No such user (or not visible to you)")
    def get(self, user_id: uuid.UUID):
        """Get a user"""
        user = service.get_user(actor=current_actor(), user_id=user_id)
        blp.set_entity_etag(user)
        return user

    @blp.etag
    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema)
    @blp.error(403, "Forbidden")
    @blp.error(404, "No such user (or not visible to you)")
    @blp.error(409, "Email taken, last platform admin, or tenant deleted")
    def patch(self, changes, user_id: uuid.UUID):
        """Change a user's name, email or role"""
        user = service.update_user(actor=current_actor(), user_id=user_id, changes=changes, if_match=request.if_match)
        blp.set_entity_etag(user)
        return user

    @blp.etag
    @blp.response(204)
    @blp.error(403, "Forbidden")
    @blp.error(404, "No such user (or not visible to you)")
    @blp.error(409, "Yourself, already disabled, or the last active platform admin")
    def delete(self, user_id: uuid.UUID):
        """Disable a user (soft delete; all its tokens are revoked)"""
        service.delete_user(actor=current_actor(), user_id=user_id, if_match=request.if_match)


@blp.route("/<uuid:user_id>/restore")
class UserRestore(MethodView):
    decorators = [auth_required()]

    @blp.doc(description="The user signs in again; tokens issued before it was disabled stay refused.")
    @blp.etag
    @blp.response(200, UserSchema)
    @blp.error(403, "Forbidden")
    @blp.error(404, "No such user (or not visible to you)")
    @blp.error(409, "Not disabled, or its tenant is deleted")
    def post(self, user_id: uuid.UUID):
        """Restore a disabled user"""
        user = service.restore_user(actor=current_actor(), user_id=user_id, if_match=request.if_match)
        blp.set_entity_etag(user)
        return user


@blp.route("/<uuid:user_id>/reset-password")
class UserPasswordReset(MethodView):
    decorators = [auth_required()]

    @blp.doc(description=(
        "`{new_password, temporary}` sets the password (`temporary` defaults to true: the user must change it at its "
        "next sign-in) and answers `{user}`. `{}` issues a one-time reset token instead and answers "
        "`{user, reset_token, expires_at}` (lifetime RESET_TOKEN_TTL, default 1 h); the token is shown this once, "
        "replaces any earlier one, and is used at POST /api/v1/auth/password-reset. The current password keeps "
        "working until then. Either way every token of the user is revoked at once. Only platform admins reset a "
        "platform admin. A disabled user must be restored first (409). With `If-Match` (the user's ETag), a user "
        "changed since is refused with 412."), parameters=[OPTIONAL_IF_MATCH])
    @blp.arguments(PasswordResetRequestSchema)
    @blp.response(200, PasswordResetResultSchema)
    @blp.error(403, "Forbidden")
    @blp.error(412, "If-Match does not match the user's current ETag")
    @blp.error(404, "No such user (or not visible to you)")
    @blp.error(409, "The user is disabled, or its tenant is deleted")
    def post(self, data, user_id: uuid.UUID):
        """Reset a user's password, or issue a one-time reset token"""
        return service.reset_password(actor=current_actor(), user_id=user_id, if_match=request.if_match, **data)
