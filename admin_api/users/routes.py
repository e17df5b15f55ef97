import uuid

from flask import request
from flask.views import MethodView

from admin_api.core.api import CREATED_HEADERS, LIST_HEADERS, Blueprint, created
from admin_api.core.pagination import page_response
from admin_api.core.security import auth_required, current_actor
from admin_api.users import service
from admin_api.users.schemas import UserCreateSchema, UserQueryArgsSchema, UserSchema, UserUpdateSchema

blp = Blueprint(
    "users", __name__, url_prefix="/api/v1/users",
    description=(
        "Users. Emails are case-insensitive and unique per tenant among all users, disabled ones included. "
        "Another tenant's user answers 404, exactly like a missing one."
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
