from flask.views import MethodView

from admin_api.auth import service
from admin_api.auth.schemas import (
    ChangePasswordSchema,
    LoginSchema,
    PasswordResetSchema,
    RefreshSchema,
    RevokeSchema,
    TokenSchema,
)
from admin_api.core.api import Blueprint
from admin_api.core.context import client_address
from admin_api.core.security import auth_required, current_actor, current_claims
from admin_api.users.schemas import UserSchema

blp = Blueprint(
    "auth", __name__, url_prefix="/api/v1/auth",
    description=(
        "Sign in and manage tokens. Access tokens last JWT_ACCESS_TOKEN_EXPIRES seconds; refresh tokens rotate on "
        "every use. A wrong email, a wrong password, a disabled user and a deleted tenant all give the same 401. "
        "Repeated failures per account or per client address give 429 with Retry-After."
    ),
)


@blp.route("/login")
class Login(MethodView):
    @blp.doc(security=[])
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenSchema)
    @blp.error(401, "Invalid email or password")
    @blp.error(429, "Too many failed attempts (see Retry-After)")
    def post(self, data):
        """Sign in with email and password"""
        return service.login(**data, address=client_address())


@blp.route("/refresh")
class Refresh(MethodView):
    decorators = [auth_required(refresh=True)]  # a password-change-only session cannot extend itself

    @blp.doc(description="Send the **refresh** token as the bearer token, with no body or `{}`. It is rotated: use "
                         "the new one next time. A refresh token already used is refused (401); the tokens issued "
                         "from it stay valid until revoked or expired (no family revocation: a client that retries a "
                         "refresh is not signed out). To end a session, POST /auth/revoke with both tokens.")
    @blp.arguments(RefreshSchema, required=False)
    @blp.response(200, TokenSchema)
    @blp.error(401, "Not a valid, unused refresh token")
    def post(self, _):
        """Exchange a refresh token for new tokens"""
        return service.refresh(user=current_actor(), payload=current_claims())


@blp.route("/revoke")
class Revoke(MethodView):
    decorators = [auth_required(allow_password_change=True, any_type=True)]

    @blp.arguments(RevokeSchema)
    @blp.response(204)
    @blp.error(401, "Token missing, invalid or already revoked")
    def post(self, data):
        """Sign out: revoke this token (and optionally a refresh token)"""
        service.revoke(user=current_actor(), payload=current_claims(), **data)


@blp.route("/me")
class Me(MethodView):
    decorators = [auth_required(allow_password_change=True)]

    @blp.response(200, UserSchema)
    @blp.error(401, "Token missing, invalid or revoked")
    def get(self):
        """The signed-in user"""
        return current_actor()


@blp.route("/password-reset")
class PasswordReset(MethodView):
    @blp.doc(security=[], description=(
        "Completes a reset an admin started (POST /users/{id}/reset-password with `{}`). The token works once. "
        "Unknown, used, expired or superseded tokens, and tokens of a user disabled or of a tenant deleted since, "
        "all get the same 410. A refused new password (422) leaves the token usable. Every token of the user is "
        "revoked; sign in with the new password. Attempts are limited per client address (429)."))
    @blp.arguments(PasswordResetSchema)
    @blp.response(204)
    @blp.error(409, "The account was changed by another request meanwhile; try again")
    @blp.error(410, "The reset token is not (or no longer) valid")
    @blp.error(429, "Too many attempts (see Retry-After)")
    def post(self, data):
        """Set a new password with a one-time reset token"""
        service.complete_password_reset(**data, address=client_address())


@blp.route("/change-password")
class ChangePassword(MethodView):
    decorators = [auth_required(allow_password_change=True)]

    @blp.doc(description=(
        "The caller's own password; also what a token from a temporary password allows. A wrong current password "
        "is a 422 naming `current_password` (not a 401: the caller stays signed in); repeated wrong ones give 429. "
        "The new password must differ from the current one. On success every token of the caller is revoked, the "
        "one used for this call included: sign in again with the new password."))
    @blp.arguments(ChangePasswordSchema)
    @blp.response(204)
    @blp.error(403, "Not allowed by policy")
    @blp.error(409, "The account was changed by another request meanwhile; try again")
    @blp.error(429, "Too many wrong current passwords (see Retry-After)")
    def post(self, data):
        """Change your password"""
        service.change_password(user=current_actor(), **data)
