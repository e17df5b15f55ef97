import uuid

from flask import current_app, request
from flask.views import MethodView

from admin_api.core.api import OPTIONAL_IF_MATCH, Blueprint
from admin_api.core.security import auth_required, current_actor
from admin_api.profiles import service
from admin_api.profiles.models import Photo
from admin_api.profiles.photos import CONTENT_TYPE
from admin_api.profiles.schemas import PhotoQueryArgsSchema, PhotoUploadSchema, ProfileSchema, ProfileUpdateSchema

blp = Blueprint(
    "profiles", __name__, url_prefix="/api/v1/users/<uuid:user_id>/profile",
    description=(
        "User profiles and photos. Members read and edit their own, tenant admins those of their tenant, "
        "platform admins all; another tenant's user answers 404. A disabled user keeps its profile and photo "
        "unchanged until restored: they can be read, changes are refused (409). Writes honour If-Match with the "
        "profile's ETag (GET /profile). Photos are stored re-encoded as WebP (at most 512x512, no metadata)."
    ),
)

PHOTO_MAX_AGE = 3600  # seconds; photo_url changes with every new photo, so a cached one is never stale there
PHOTO_HEADERS = {
    "ETag": {"description": "The photo's version; send it in If-None-Match for a 304.", "schema": {"type": "string"}},
    "Cache-Control": {"description": "`private, max-age=3600` (photos need a token).", "schema": {"type": "string"}},
    "X-Content-Type-Options": {"description": "`nosniff`", "schema": {"type": "string"}},
    "Content-Disposition": {"description": "`inline`", "schema": {"type": "string"}},
}
BINARY = {"type": "string", "format": "binary"}


def photo_response(photo: Photo):
    """The image, cacheable by the viewer's browser only, never sniffed as anything else; 304 when unchanged."""
    response = current_app.response_class(photo.data, mimetype=photo.content_type)
    response.set_etag(photo.etag)
    response.headers.update({
        "Cache-Control": f"private, max-age={PHOTO_MAX_AGE}",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": 'inline; filename="photo.webp"',
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })
    return response.make_conditional(request)


@blp.route("")
class ProfileById(MethodView):
    decorators = [auth_required()]

    @blp.etag
    @blp.response(200, ProfileSchema)
    @blp.error(404, "No such user (or not visible to you)")
    def get(self, user_id: uuid.UUID):
        """Get a user's profile"""
        profile = service.get_profile(actor=current_actor(), user_id=user_id)
        blp.set_entity_etag(profile)
        return profile

    @blp.etag
    @blp.arguments(ProfileUpdateSchema)
    @blp.response(200, ProfileSchema)
    @blp.error(403, "Forbidden")
    @blp.error(404, "No such user (or not visible to you)")
    @blp.error(409, "The user is disabled or its tenant deleted, or it changed meanwhile")
    def put(self, data, user_id: uuid.UUID):
        """Replace a user's profile (fields left out are cleared)"""
        profile = service.update_profile(actor=current_actor(), user_id=user_id, changes=data,
                                         if_match=request.if_match)
        blp.set_entity_etag(profile)
        return profile


@blp.route("/photo")
class ProfilePhoto(MethodView):
    decorators = [auth_required()]

    @blp.arguments(PhotoQueryArgsSchema, location="query")
    @blp.response(200, BINARY, content_type=CONTENT_TYPE, headers=PHOTO_HEADERS, description="The photo (WebP)")
    @blp.alt_response(304, description="Not modified (If-None-Match has the current ETag)")
    @blp.error(404, "No such user (or not visible to you), or no photo")
    def get(self, _args, user_id: uuid.UUID):
        """Download a user's photo"""
        return photo_response(service.get_photo(actor=current_actor(), user_id=user_id))

    @blp.etag
    @blp.arguments(PhotoUploadSchema, location="files")
    @blp.response(200, ProfileSchema)
    @blp.error(403, "Forbidden")
    @blp.error(404, "No such user (or not visible to you)")
    @blp.error(409, "The user is disabled or its tenant deleted")
    @blp.error(412, "If-Match does not match the profile's ETag")
    @blp.error(413, "The file (or the whole body) is too large")
    @blp.error(415, "Not a JPEG, PNG, WebP or GIF image")
    @blp.error(422, "No `photo` part, empty, corrupt or truncated data, or too many pixels")
    @blp.doc(parameters=[OPTIONAL_IF_MATCH])
    def post(self, files, user_id: uuid.UUID):
        """Upload a user's photo (replaces the previous one)"""
        profile = service.upload_photo(actor=current_actor(), user_id=user_id, photo=files["photo"].stream,
                                       if_match=request.if_match)
        blp.set_entity_etag(profile)
        return profile

    @blp.etag
    @blp.response(204)
    @blp.error(403, "Forbidden")
    @blp.error(404, "No such user (or not visible to you), or no photo")
    @blp.error(409, "The user is disabled or its tenant deleted")
    def delete(self, user_id: uuid.UUID):
        """Remove a user's photo"""
        service.delete_photo(actor=current_actor(), user_id=user_id, if_match=request.if_match)
