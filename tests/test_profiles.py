"""Profiles and photos over HTTP: fields, access, If-Match, uploads of every kind, storage (C04, C17-C20)."""
from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select, update
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from admin_api.audit.models import AuditEvent
from admin_api.core import storage
from admin_api.extensions import db
from admin_api.profiles.models import UserProfile
from admin_api.tenants.models import Tenant
from admin_api.users.models import User
from tests import images
from tests.conftest import audit_actions, new_id

FIELDS = {"user_id", "display_name", "title", "bio", "phone", "locale", "timezone", "photo_url", "updated_at"}
FULL = {"display_name": "Amy Pond", "title": "Engineer", "bio": "Line one.\nLine two.", "phone": "+41 44 668 18 00",
        "locale": "en_gb", "timezone": "europe/zurich"}


def profile_url(user) -> str:
    return f"/api/v1/users/{user.id}/profile"


def photo_url(user) -> str:
    return f"/api/v1/users/{user.id}/profile/photo"


def multipart(parts: dict) -> dict:
    """A multipart/form-data body, encoded in memory (the test client spools big ones to files it never closes)."""
    boundary, body = encode_multipart(parts)
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def upload(client, user, headers, data: bytes, filename: str = "photo.jpg", content_type: str = "image/jpeg",
           **extra_headers):
    photo = FileStorage(io.BytesIO(data), filename=filename, content_type=content_type)
    return client.post(photo_url(user), headers={**headers, **extra_headers}, **multipart({"photo": photo}))


def stored_files(app) -> list[str]:
    folder = Path(app.config["UPLOAD_FOLDER"])
    return sorted(os.listdir(folder)) if folder.exists() else []


def state(app) -> tuple:
    """Files in the uploads folder, profile rows, display names, and the number of audit events."""
    with app.app_context():
        rows = db.session.execute(select(UserProfile.__table__)).all()
        names = db.session.execute(select(User.id, User.display_name, User.version)).all()
        events = db.session.scalar(select(func.count()).select_from(AuditEvent))
    return stored_files(app), sorted(map(tuple, rows)), sorted(map(tuple, names)), events


def profile_events(app, user) -> list[str]:
    return [action for action in audit_actions(app, target_id=str(user.id)) if action.startswith("profile.")]


def served(client, user, headers) -> Image.Image:
    response = client.get(photo_url(user), headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return Image.open(io.BytesIO(response.data))


def set_column(app, model, row_id, **values) -> None:
    with app.app_context():
        db.session.execute(update(model).where(model.id == row_id).values(**values))
        db.session.commit()


# --- profile fields -------------------------------------------------------------------------

def test_a_new_users_profile_is_empty_with_its_display_name(std, client):
    amy = std["people"]["amy"]
    response = client.get(profile_url(amy), headers=std["h"]["amy"])
    assert response.status_code == 200
    assert set(response.json) == FIELDS
    assert response.json["user_id"] == str(amy.id) and response.json["display_name"] == "Amy"
    assert all(response.json[f] is None for f in ("title", "bio", "phone", "locale", "timezone", "photo_url"))
    assert response.headers["ETag"]


def test_put_stores_normalized_values_and_audits_before_and_after(std, client, app):
    amy = std["people"]["amy"]
    response = client.put(profile_url(amy), headers=std["h"]["amy"], json=FULL)
    assert response.status_code == 200, response.json
    assert response.json | {"updated_at": None} == {
        "user_id": str(amy.id), "display_name": "Amy Pond", "title": "Engineer", "bio": "Line one.\nLine two.",
        "phone": "+41446681800", "locale": "en-GB", "timezone": "Europe/Zurich", "photo_url": None,
        "updated_at": None}
    assert client.get(profile_url(amy), headers=std["h"]["amy"]).json == response.json
    # One source of truth for the name: the user shows it too.
    assert client.get(f"/api/v1/users/{amy.id}", headers=std["h"]["alice"]).json["display_name"] == "Amy Pond"
    assert profile_events(app, amy) == ["profile.update"]
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "profile.update"))
        assert event.actor_id == amy.id and event.tenant_id == std["a"].id
        assert event.changes["before"] == {"display_name": "Amy", "title": None, "bio": None, "phone": None,
                                           "locale": None, "timezone": None}
        assert event.changes["after"]["phone"] == "+41446681800"


def test_put_replaces_the_editable_fields(std, client):
    amy, h = std["people"]["amy"], std["h"]["amy"]
    client.put(profile_url(amy), headers=h, json=FULL)
    response = client.put(profile_url(amy), headers=h, json={"display_name": "Amy", "title": "", "phone": None})
    assert response.status_code == 200
    assert {k: response.json[k] for k in ("display_name", "title", "bio", "phone", "locale", "timezone")} == {
        "display_name": "Amy", "title": None, "bio": None, "phone": None, "locale": None, "timezone": None}


def test_put_without_changes_writes_nothing(std, client, app):
    amy = std["people"]["amy"]
    before = state(app)
    response = client.put(profile_url(amy), headers=std["h"]["amy"], json={"display_name": "Amy"})
    assert response.status_code == 200 and response.json["title"] is None
    assert state(app) == before


@pytest.mark.parametrize("body, fields", [
    ({"display_name": ""}, {"display_name"}),
    ({"display_name": "x" * 101}, {"display_name"}),
    ({"title": "x"}, {"display_name"}),  # PUT is a replacement: the name is required
    ({"display_name": "A", "title": "x" * 101, "bio": "x" * 2001}, {"title", "bio"}),
    ({"display_name": "A", "phone": "044 668 18 00"}, {"phone"}),   # not international
    ({"display_name": "A", "phone": "+1 555"}, {"phone"}),          # not a valid number
    ({"display_name": "A", "phone": "+41 44 668 18 00 ext. 12"}, {"phone"}),
    ({"display_name": "A", "phone": "call me"}, {"phone"}),
    ({"display_name": "A", "locale": "zz"}, {"locale"}),
    ({"display_name": "A", "locale": "english"}, {"locale"}),
    ({"display_name": "A", "locale": "en-"}, {"locale"}),
    ({"display_name": "A", "timezone": "Mars/Olympus_Mons"}, {"timezone"}),
    ({"display_name": "A", "timezone": "../../etc/passwd"}, {"timezone"}),
    ({"display_name": "A", "timezone": "+02:00"}, {"timezone"}),
    ({"display_name": "A", "title": "a\u202eb"}, {"title"}),
    ({"display_name": "A", "photo_url": "/x"}, {"photo_url"}),      # read-only fields are refused
    ({"display_name": "A", "user_id": new_id(), "updated_at": "2026-01-01T00:00:00Z"}, {"user_id", "updated_at"}),
    ({"display_name": "A", "role": "platform_admin"}, {"role"}),
    ({"display_name": "A", "phone": 41446681800, "bio": ["x"]}, {"phone", "bio"}),
    ({"display_name": "x", "title": "a\x00b"}, {"title"}),
])
def test_invalid_values_are_422_naming_each_field_and_store_nothing(std, client, app, body, fields):
    amy = std["people"]["amy"]
    before = state(app)
    response = client.put(profile_url(amy), headers=std["h"]["amy"], json=body)
    assert response.status_code == 422, response.json
    assert set(response.json["errors"]) == fields
    assert state(app) == before


@pytest.mark.parametrize("phone, stored", [
    ("+1 650-253-0000", "+16502530000"), ("+44 20 7946 0958", "+442079460958"), ("+41446681800", "+41446681800")])
def test_phone_numbers_are_stored_in_e164(std, client, phone, stored):
    amy = std["people"]["amy"]
    response = client.put(profile_url(amy), headers=std["h"]["amy"], json={"display_name": "Amy", "phone": phone})
    assert response.status_code == 200 and response.json["phone"] == stored


@pytest.mark.parametrize("locale, stored", [("en", "en"), ("zh-Hant-TW", "zh-Hant-TW"), ("es-419", "es-419"),
                                            ("EN-gb", "en-GB"), ("sr-Latn-RS", "sr-Latn-RS")])
def test_locales_are_bcp47_tags_stored_standardized(std, client, locale, stored):
    amy = std["people"]["amy"]
    response = client.put(profile_url(amy), headers=std["h"]["amy"], json={"display_name": "Amy", "locale": locale})
    assert response.status_code == 200 and response.json["locale"] == stored


# --- If-Match --------------------------------------------------------------------------------

def test_put_honours_if_match(std, client, app):
    amy, h = std["people"]["amy"], std["h"]["amy"]
    first = client.get(profile_url(amy), headers=h).headers["ETag"]
    changed = client.put(profile_url(amy), headers={**h, "If-Match": first}, json={"display_name": "Amy", "title": "A"})
    assert changed.status_code == 200 and changed.headers["ETag"] != first
    before = state(app)
    stale = client.put(profile_url(amy), headers={**h, "If-Match": first}, json={"display_name": "Amy", "title": "B"})
    assert stale.status_code == 412 and stale.json["code"] == 412
    assert state(app) == before
    assert client.get(profile_url(amy), headers={**h, "If-None-Match": changed.headers["ETag"]}).status_code == 304


def test_a_name_change_through_the_user_makes_the_profile_etag_stale(std, client):
    amy = std["people"]["amy"]
    etag = client.get(profile_url(amy), headers=std["h"]["amy"]).headers["ETag"]
    client.patch(f"/api/v1/users/{amy.id}", headers=std["h"]["alice"], json={"display_name": "Amelia"})
    response = client.put(profile_url(amy), headers={**std["h"]["amy"], "If-Match": etag}, json={"display_name": "A"})
    assert response.status_code == 412


# --- who may do what -------------------------------------------------------------------------

ACCESS = [
    ("amy", "amy", 200), ("alice", "amy", 200), ("root", "amy", 200), ("alice", "alice", 200),
    ("root", "root", 200), ("bob", "amy", 404), ("bea", "amy", 404), ("amy", "alice", 404),
    ("alice", "root", 404), ("amy", "missing", 404), (None, "amy", 401),
]


@pytest.mark.parametrize("who, whose, status", ACCESS)
def test_who_reads_and_edits_which_profile(std, client, app, who, whose, status):
    target = std["people"].get(whose) or User(id=new_id())
    headers = std["h"].get(who, {})
    before = state(app)
    statuses = [client.get(profile_url(target), headers=headers).status_code,
                client.put(profile_url(target), headers=headers, json={"display_name": "Renamed"}).status_code,
                upload(client, target, headers, images.png()).status_code,
                client.get(photo_url(target), headers=headers).status_code,
                client.delete(photo_url(target), headers=headers).status_code]
    assert statuses == ([200, 200, 200, 200, 204] if status == 200 else [status] * 5)
    if status != 200:
        assert state(app) == before  # refused: nothing stored, nothing audited


def test_refusals_do_not_reveal_another_tenants_user(std, client):
    amy, h = std["people"]["amy"], std["h"]["bob"]
    hidden = client.put(profile_url(amy), headers=h, json={"display_name": "X"})
    missing = client.put(f"/api/v1/users/{new_id()}/profile", headers=h, json={"display_name": "X"})
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json == missing.json


def test_a_password_change_token_is_403(std, client, world, app):
    amy = std["people"]["amy"]
    set_column(app, User, amy.id, must_change_password=True)
    headers = world.headers(amy.email)
    for response in (client.get(profile_url(amy), headers=headers),
                     client.put(profile_url(amy), headers=headers, json={"display_name": "X"}),
                     upload(client, amy, headers, images.png())):
        assert response.status_code == 403 and response.json["code"] == 403
    assert stored_files(app) == []


def test_a_disabled_user_keeps_profile_and_photo_readable_and_frozen(std, client, app):
    amy, h = std["people"]["amy"], std["h"]["alice"]
    client.put(profile_url(amy), headers=h, json=FULL)
    assert upload(client, amy, h, images.jpeg()).status_code == 200
    assert client.delete(f"/api/v1/users/{amy.id}", headers=h).status_code == 204
    profile = client.get(profile_url(amy), headers=h).json
    assert profile["title"] == "Engineer" and profile["photo_url"]
    assert client.get(photo_url(amy), headers=h).status_code == 200
    before = state(app)
    for response in (client.put(profile_url(amy), headers=h, json={"display_name": "X"}),
                     upload(client, amy, h, images.png()),
                     client.delete(photo_url(amy), headers=std["h"]["root"])):
        assert response.status_code == 409 and "disabled" in response.json["message"]
    assert state(app) == before
    assert client.post(f"/api/v1/users/{amy.id}/restore", headers=h).status_code == 200
    assert client.get(profile_url(amy), headers=h).json == profile
    assert client.get(photo_url(amy), headers=h).status_code == 200


def test_a_deleted_tenants_profiles_cannot_change(std, client, app):
    amy = std["people"]["amy"]
    set_column(app, Tenant, std["a"].id, status="deleted")
    before = state(app)
    response = client.put(profile_url(amy), headers=std["h"]["root"], json={"display_name": "X"})
    assert response.status_code == 409
    assert upload(client, amy, std["h"]["root"], images.png()).status_code == 409
    assert state(app) == before


# --- photo upload: sound images --------------------------------------------------------------

@pytest.mark.parametrize("name, data, size", [
    ("jpeg", images.jpeg((64, 48)), (64, 48)),
    ("png", images.png((64, 48)), (64, 48)),
    ("webp", images.webp((64, 48)), (64, 48)),
    ("gif", images.gif_animated((40, 30)), (40, 30)),
    ("one pixel", images.png((1, 1)), (1, 1)),
    ("large", images.jpeg((2000, 1000)), (512, 256)),
    ("tall", images.png((300, 1200), mode="RGB"), (128, 512)),
    # the completeness check of PNG pixel data counts rows of every layout right
    ("png interlaced, many IDAT chunks", images.interlaced_png((61, 37)), (61, 37)),
    ("png interlaced, smaller than a pass grid", images.interlaced_png((3, 2)), (3, 2)),
    ("png palette", images.encoded(images.picture((33, 17)).convert("P"), "PNG"), (33, 17)),
    ("png palette, rebuilt chunk by chunk", images.palette_png("before", transparency=True), (4, 4)),
    ("png 1-bit", images.encoded(images.picture((29, 13)).convert("1"), "PNG"), (29, 13)),
    ("png 16-bit grey", images.encoded(images.picture((19, 11)).convert("I;16"), "PNG"), (19, 11)),
    ("png grey+alpha", images.png((23, 9), mode="LA"), (23, 9)),
])
def test_each_accepted_format_becomes_a_clean_webp(std, client, app, name, data, size):
    amy, h = std["people"]["amy"], std["h"]["amy"]
    response = upload(client, amy, h, data, filename="whatever.bin", content_type="application/octet-stream")
    assert response.status_code == 200, response.json
    assert set(response.json) == FIELDS
    assert response.json["photo_url"].startswith(f"/api/v1/users/{amy.id}/profile/photo?v=")
    assert response.headers["ETag"]
    photo = client.get(response.json["photo_url"], headers=h)
    assert photo.status_code == 200 and photo.mimetype == "image/webp"
    assert photo.headers["X-Content-Type-Options"] == "nosniff"
    assert photo.headers["Content-Disposition"].startswith("inline")
    assert photo.headers["Cache-Control"].startswith("private") and "max-age" in photo.headers["Cache-Control"]
    assert photo.headers["ETag"]
    image = Image.open(io.BytesIO(photo.data))
    assert image.format == "WEBP" and image.size == size and image.mode in {"RGB", "RGBA"}
    assert getattr(image, "n_frames", 1) == 1
    files = stored_files(app)
    assert len(files) == 1 and storage.NAME.fullmatch(files[0]) and files[0].startswith(amy.id.hex)
    assert profile_events(app, amy) == ["profile.photo_upload"]


def test_an_animation_keeps_its_first_frame(std, client):
    amy, h = std["people"]["amy"], std["h"]["amy"]
    upload(client, amy, h, images.gif_animated())
    red, green, blue = served(client, amy, h).convert("RGB").getpixel((20, 15))
    assert red > 200 and green < 60 and blue < 60


def test_exif_orientation_is_applied_then_every_piece_of_metadata_dropped(std, client):
    """C18: GPS, camera make and model, XMP, comments: none survive; orientation 6 is turned upright first."""
    amy, h = std["people"]["amy"], std["h"]["amy"]
    assert upload(client, amy, h, images.jpeg_with_gps((60, 40), orientation=6)).status_code == 200
    response = client.get(photo_url(amy), headers=h)
    image = Image.open(io.BytesIO(response.data))
    assert image.size == (40, 60)  # stored landscape, shown portrait
    top, bottom = image.convert("RGB").getpixel((20, 5)), image.convert("RGB").getpixel((20, 55))
    assert top[0] > 200 and top[2] < 80 and bottom[2] > 200 and bottom[0] < 80  # the left (red) half is on top
    assert_no_metadata(response.data, image)


def test_png_metadata_chunks_are_dropped(std, client):
    """C18: eXIf, tEXt and iTXt (XMP) chunks do not reach the served photo."""
    amy, h = std["people"]["amy"], std["h"]["amy"]
    assert upload(client, amy, h, images.png_with_metadata()).status_code == 200
    response = client.get(photo_url(amy), headers=h)
    assert_no_metadata(response.data, Image.open(io.BytesIO(response.data)))


def assert_no_metadata(data: bytes, image: Image.Image) -> None:
    for secret in images.SECRETS:
        assert secret not in data
    for marker in (b"EXIF", b"Exif", b"XMP ", b"xmpmeta", b"ICCP", b"GPS"):
        assert marker not in data
    assert not image.getexif() and not set(image.info) & {"exif", "xmp", "icc_profile", "comment"}


def test_a_new_photo_replaces_the_old_file(std, client, app):
    amy, h = std["people"]["amy"], std["h"]["amy"]
    first = upload(client, amy, h, images.jpeg())
    [old_file] = stored_files(app)
    second = upload(client, amy, h, images.png((10, 10)))
    assert second.status_code == 200 and second.json["photo_url"] != first.json["photo_url"]
    [new_file] = stored_files(app)
    assert new_file != old_file
    assert served(client, amy, h).size == (10, 10)


def test_the_photo_is_cached_with_its_etag(std, client):
    amy, h = std["people"]["amy"], std["h"]["amy"]
    upload(client, amy, h, images.jpeg())
    first = client.get(photo_url(amy), headers=h)
    again = client.get(photo_url(amy), headers={**h, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == first.headers["ETag"]
    assert client.get(photo_url(amy), headers={**h, "If-None-Match": '"other"'}).status_code == 200


def test_photo_reads_refuse_unknown_arguments_and_missing_photos(std, client):
    amy, h = std["people"]["amy"], std["h"]["amy"]
    assert client.get(photo_url(amy), headers=h).status_code == 404
    upload(client, amy, h, images.jpeg())
    assert client.get(photo_url(amy) + "?v=anything", headers=h).status_code == 200
    response = client.get(photo_url(amy) + "?size=big", headers=h)
    assert response.status_code == 422 and "size" in response.json["errors"]


# --- photo upload: everything else (C17, C19, C20) -------------------------------------------

REFUSED = [
    ("bomb 8000x8000 (64 MP, a few KB)", lambda: images.bomb_png(8000, 8000), 422),
    ("declares 20000x20000", lambda: images.bomb_png(20000, 20000), 422),
    ("declares 10000x10000 (Pillow only warns)", lambda: images.declared_png(10000, 10000), 422),
    ("truncated jpeg", images.truncated_jpeg, 422),
    # Pillow takes a zlib stream that ends early for the whole image and paints the rest black
    ("png with 16 of its 6000 rows", lambda: images.short_png(6000, 6000, 16), 422),
    ("png one row short", lambda: images.short_png(300, 200, 199), 422),
    # palette images without their palette before the pixels: these answered 500
    ("palette png without PLTE", lambda: images.palette_png("none"), 422),
    ("palette png with PLTE after the pixels", lambda: images.palette_png("after"), 422),
    ("1-bit palette png without PLTE", lambda: images.palette_png("none", bits=1), 422),
    ("palette png without PLTE, with tRNS", lambda: images.palette_png("none", transparency=True), 422),
    # ...and the other chunk faults Pillow reads past (a second review)
    ("palette png with an empty PLTE", lambda: images.edited_png(images.palette_png(), lambda c: images._replaced(c, b"PLTE", b"")), 422),
    ("PLTE not a multiple of 3", lambda: images.edited_png(images.palette_png(), lambda c: [(k, b[:-1] if k == b"PLTE" else b) for k, b in c]), 422),
    ("tRNS before PLTE", lambda: images.edited_png(images.palette_png(transparency=True), lambda c: [c[0], c[2], c[1], *c[3:]]), 422),
    ("PLTE in a greyscale png", lambda: images.edited_png(images.png((8, 8), mode="L"), lambda c: [c[0], (b"PLTE", b"\x00" * 6), *c[1:]]), 422),
    ("greyscale tRNS of the wrong length", lambda: images.edited_png(images.png((8, 8), mode="L"), lambda c: [c[0], (b"tRNS", b"\x00" * 4), *c[1:]]), 422),
    ("IHDR of 14 bytes", lambda: images.edited_png(images.png((8, 8), mode="RGB"), lambda c: [(b"IHDR", c[0][1] + b"\x00"), *c[1:]]), 422),
    ("IDAT with a wrong CRC", lambda: images.damaged_png("crc"), 422),
    ("IDAT declaring more bytes than the file holds", lambda: images.damaged_png("length"), 422),
    ("png header then html", images.png_header_then_html, 415),
    ("svg with a script", lambda: images.SVG, 415),
    ("html", lambda: images.HTML, 415),
    ("pdf", lambda: images.PDF, 415),
    ("script named .jpg", lambda: images.SCRIPT, 415),
    ("bmp (not accepted)", lambda: images.encoded(images.picture(), "BMP"), 415),
    ("zero bytes", lambda: b"", 422),
    ("6 MiB", lambda: images.noise(6 * images.MIB), 413),
    ("5 MiB + 1 byte (under the body limit)", lambda: images.jpeg() + images.noise(5 * images.MIB), 413),
]


@pytest.mark.parametrize("label, make, status", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_uploads_change_nothing(std, client, app, label, make, status):
    amy, h = std["people"]["amy"], std["h"]["amy"]
    upload(client, amy, h, images.jpeg())
    previous = client.get(photo_url(amy), headers=h).headers["ETag"]
    before = state(app)
    response = upload(client, amy, h, make(), filename="evil.jpg")
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json and response.json["code"] == status and response.json["message"]
    if status != 413 or "under" in label:
        assert response.json["errors"]["photo"]
    assert state(app) == before
    assert client.get(photo_url(amy), headers=h).headers["ETag"] == previous


def test_oversize_body_is_a_json_413_before_reading(std, client, app):
    """C20: a 6 MiB upload is refused from its Content-Length, as JSON, nothing stored."""
    amy = std["people"]["amy"]
    before = state(app)
    response = upload(client, amy, std["h"]["amy"], images.noise(6 * images.MIB))
    assert response.status_code == 413 and response.mimetype == "application/json"
    assert response.json["code"] == 413
    assert "too large" in response.json["message"]
    assert state(app) == before


def test_limits_are_configurable(std, make_app):
    app = make_app(PHOTO_MAX_BYTES=2000, PHOTO_MAX_PIXELS=1000)
    client = app.test_client()
    amy, h = std["people"]["amy"], std["h"]["amy"]
    too_many_pixels = upload(client, amy, h, images.png((40, 30)))  # 1200 pixels
    assert too_many_pixels.status_code == 422 and "megapixels" in too_many_pixels.json["errors"]["photo"][0]
    assert upload(client, amy, h, images.jpeg((20, 20)) + b"\0" * 2000).status_code == 413
    assert upload(client, amy, h, images.png((20, 20))).status_code == 200


@pytest.mark.parametrize("body, field", [
    ({}, "photo"),                                                           # C04: no photo part
    ({"photo": "not a file"}, "photo"),                                      # a text field is not a file
    ({"photo": FileStorage(io.BytesIO(images.png()), "p.png"), "avatar": FileStorage(io.BytesIO(b"x"), "a.png")},
     "avatar"),
])
def test_multipart_without_a_photo_part_is_422_naming_it(std, client, app, body, field):
    amy = std["people"]["amy"]
    before = state(app)
    response = client.post(photo_url(amy), headers=std["h"]["amy"], **multipart(body))
    assert response.status_code == 422 and field in response.json["errors"], response.json
    assert state(app) == before


def test_a_json_body_is_not_a_photo(std, client, app):
    """An unsupported media type (API.md: 415), as a hostile review pointed out; it was a 422 "missing photo"."""
    amy = std["people"]["amy"]
    response = client.post(photo_url(amy), headers=std["h"]["amy"], json={"photo": "aGVsbG8="})
    assert response.status_code == 415 and "multipart/form-data" in response.json["message"]
    assert stored_files(app) == []


@pytest.mark.parametrize("filename", [
    "../../evil.png", "..", "/etc/passwd", "..\\..\\evil.png", "ünïcødé 照片.png", "", "a" * 300 + ".png",
    "photo.png\x00.sh",
])
def test_client_file_names_never_reach_the_disk(std, client, app, filename):
    """C19: the file is stored under a server-made name whatever the client calls it."""
    amy = std["people"]["amy"]
    response = upload(client, amy, std["h"]["amy"], images.png(), filename=filename, content_type="image/png")
    assert response.status_code in {200, 422}, response.get_data(as_text=True)
    files = stored_files(app)
    assert all(storage.NAME.fullmatch(name) for name in files) and len(files) == (response.status_code == 200)
    root = Path(app.config["UPLOAD_FOLDER"]).parent
    assert not list(root.rglob("evil*")) and not list(root.rglob("passwd"))


# --- photo delete ----------------------------------------------------------------------------

def test_delete_removes_the_file_and_the_reference(std, client, app):
    amy, h = std["people"]["amy"], std["h"]["alice"]
    etag = upload(client, amy, h, images.jpeg()).headers["ETag"]
    before = state(app)
    stale = client.delete(photo_url(amy), headers={**h, "If-Match": '"stale"'})
    assert stale.status_code == 412 and state(app) == before
    response = client.delete(photo_url(amy), headers={**h, "If-Match": etag})
    assert response.status_code == 204
    assert stored_files(app) == []
    assert client.get(photo_url(amy), headers=h).status_code == 404
    assert client.get(profile_url(amy), headers=h).json["photo_url"] is None
    assert profile_events(app, amy) == ["profile.photo_upload", "profile.photo_delete"]
    again = client.delete(photo_url(amy), headers=h)
    assert again.status_code == 404 and again.is_json
    assert audit_actions(app, action="profile.photo_delete") == ["profile.photo_delete"]


def test_upload_honours_if_match(std, client, app):
    amy, h = std["people"]["amy"], std["h"]["amy"]
    etag = client.get(profile_url(amy), headers=h).headers["ETag"]
    assert upload(client, amy, h, images.jpeg(), **{"If-Match": etag}).status_code == 200
    before = state(app)
    response = upload(client, amy, h, images.png(), **{"If-Match": etag})
    assert response.status_code == 412 and state(app) == before


# --- storage ---------------------------------------------------------------------------------

def test_a_failed_transaction_deletes_the_new_file(std, client, app, monkeypatch):
    from admin_api.profiles import service

    amy, h = std["people"]["amy"], std["h"]["amy"]
    upload(client, amy, h, images.jpeg())
    before = state(app)

    def broken(*_args, **_kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(service, "_record", broken)
    response = upload(client, amy, h, images.png())
    assert response.status_code == 500 and "database" not in response.json["message"]
    assert state(app) == before


def test_a_crash_while_writing_leaves_no_file(app, monkeypatch):
    def crash(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with app.test_request_context(), pytest.raises(OSError):
        storage.save(b"data", prefix="x", extension="webp")
    assert stored_files(app) == []


@pytest.mark.parametrize("name", ["../evil.webp", "/etc/passwd", "x-" + "0" * 32 + ".webp/..", "..", "",
                                  "X-" + "0" * 32 + ".webp", "x-" + "0" * 32 + ".webp\n"])
def test_storage_takes_only_names_it_made(app, name):
    with app.test_request_context():
        for operation in (storage.read, storage.delete):
            with pytest.raises(ValueError):
                operation(name)


def test_concurrent_uploads_leave_one_file_and_its_reference(std, make_app, app, monkeypatch):
    """Both uploads are decoded before either stores: the database orders them; one file survives, referenced."""
    from admin_api.profiles import service

    amy, h = std["people"]["amy"], std["h"]["amy"]
    both_decoded = threading.Barrier(2)
    process = service.photos.process

    def process_then_wait(*args, **kwargs):
        result = process(*args, **kwargs)
        try:
            both_decoded.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass
        return result

    monkeypatch.setattr(service.photos, "process", process_then_wait)
    clients = [make_app().test_client() for _ in range(2)]  # built first: building apps is not thread-safe
    statuses = []

    def send(client, data):
        statuses.append(upload(client, amy, h, data).status_code)

    threads = [threading.Thread(target=send, args=(clients[0], images.jpeg((30, 30)))),
               threading.Thread(target=send, args=(clients[1], images.png((20, 20))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert 200 in statuses and set(statuses) <= {200, 409}
    [file] = stored_files(app)
    with app.app_context():
        assert db.session.scalar(select(UserProfile.photo_name).where(UserProfile.user_id == amy.id)) == file
    assert audit_actions(app, action="profile.photo_upload").count("profile.photo_upload") == statuses.count(200)


# --- OpenAPI ---------------------------------------------------------------------------------

def test_the_upload_is_documented_as_multipart_with_a_binary_photo(client):
    """C04."""
    spec = client.get("/api/openapi.json").json
    operation = spec["paths"]["/api/v1/users/{user_id}/profile/photo"]["post"]
    schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    name = schema["$ref"].split("/")[-1]
    photo = spec["components"]["schemas"][name]["properties"]["photo"]
    assert photo["type"] == "string" and photo["format"] == "binary"
    assert "photo" in spec["components"]["schemas"][name]["required"]
    assert {"413", "415", "422"} <= set(operation["responses"])
    download = spec["paths"]["/api/v1/users/{user_id}/profile/photo"]["get"]["responses"]["200"]
    assert download["content"]["image/webp"]["schema"]["format"] == "binary"


def test_photo_answers_match_the_document(std, client, app):
    import schemathesis

    operations = schemathesis.openapi.from_wsgi("/api/openapi.json", app)["/api/v1/users/{user_id}/profile/photo"]
    amy, h = std["people"]["amy"], std["h"]["amy"]
    uploaded = upload(client, amy, h, images.jpeg())
    photo = client.get(photo_url(amy), headers=h)
    answers = [
        ("POST", uploaded, 200), ("GET", photo, 200),
        ("GET", client.get(photo_url(amy), headers={**h, "If-None-Match": photo.headers["ETag"]}), 304),
        ("POST", upload(client, amy, h, images.SVG), 415),
        ("POST", upload(client, amy, h, images.bomb_png(8000, 8000)), 422),
        ("POST", upload(client, amy, h, images.noise(6 * images.MIB)), 413),
        ("DELETE", client.delete(photo_url(amy), headers=h), 204),
        ("GET", client.get(photo_url(amy), headers=h), 404),
    ]
    for method, response, status in answers:
        assert response.status_code == status, (method, response.get_data(as_text=True)[:200])
        operations[method].validate_response(response)  # raises when undocumented or off-schema


# --- found by a hostile review ------------------------------------------------------------------

@pytest.mark.parametrize("change", ["disable the user", "delete the tenant"])
def test_an_upload_finishing_after_a_disable_is_refused(std, client, app, make_app, monkeypatch, change):
    """The status is checked again in the write transaction: a second of decoding must not outrun a disable."""
    from admin_api.profiles import photos

    amy, other = std["people"]["amy"], make_app().test_client()
    real = photos.process

    def slow_process(*args, **kwargs):
        processed = real(*args, **kwargs)
        if change == "disable the user":
            assert other.delete(f"/api/v1/users/{amy.id}", headers=std["h"]["alice"]).status_code == 204
        else:
            assert other.delete(f"/api/v1/tenants/{std['a'].id}", headers=std["h"]["root"]).status_code == 204
        return processed

    monkeypatch.setattr(photos, "process", slow_process)
    response = upload(client, amy, std["h"]["root"], images.png())
    assert response.status_code == 409
    assert stored_files(app) == [] and profile_events(app, amy) == []


@pytest.mark.parametrize("timezone", ["localtime", "Factory", "posixrules", "posix/Europe/Zurich", "right/UTC"])
def test_zoneinfo_files_that_are_not_places_are_refused(std, client, timezone):
    response = client.put(profile_url(std["people"]["amy"]), headers=std["h"]["amy"], json={**FULL, "timezone": timezone})
    assert response.status_code == 422 and "timezone" in response.json["errors"]


def test_a_text_part_or_a_second_photo_in_the_upload_is_refused(std, client, app):
    amy, h = std["people"]["amy"], std["h"]["amy"]
    before = state(app)
    extra = client.post(photo_url(amy), headers=h, **multipart({
        "photo": FileStorage(io.BytesIO(images.png()), filename="a.png"), "user_id": new_id()}))
    assert extra.status_code == 422 and list(extra.json["errors"]) == ["user_id"]
    boundary = "b0undary"
    part = (f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n").encode() + images.png() + b"\r\n"
    twice = client.post(photo_url(amy), headers=h, data=part * 2 + f"--{boundary}--\r\n".encode(),
                        content_type=f"multipart/form-data; boundary={boundary}")
    assert twice.status_code == 422 and "photo" in twice.json["errors"]
    assert state(app) == before


def test_an_oversize_body_closes_the_connection(std, client, app):
    body = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = client.post(photo_url(std["people"]["amy"]), headers=std["h"]["amy"], data=body,
                           content_type="multipart/form-data; boundary=x")
    assert response.status_code == 413 and response.headers["Connection"] == "close"


def test_a_display_name_the_users_api_accepts_is_one_the_profile_accepts(std, client):
    amy, h = std["people"]["amy"], std["h"]["alice"]
    assert client.patch(f"/api/v1/users/{amy.id}", headers=h, json={"display_name": "N" * 101}).status_code == 422
    assert client.patch(f"/api/v1/users/{amy.id}", headers=h, json={"display_name": "N" * 100}).status_code == 200
    profile = client.get(profile_url(amy), headers=h).json
    editable = {key: profile[key] for key in ("display_name", "title", "bio", "phone", "locale", "timezone")}
    assert client.put(profile_url(amy), headers=h, json=editable).status_code == 200


def test_pixels_pillow_cannot_convert_are_a_422_not_a_500(std, client, app, monkeypatch):
    """Whatever else Pillow trips on after decoding (an AssertionError once, for a palette PNG without PLTE)."""
    from admin_api.profiles import photos

    def broken(image):
        raise AssertionError("self.palette is not None")

    monkeypatch.setattr(photos, "_fitted", broken)
    amy, h = std["people"]["amy"], std["h"]["amy"]
    before = state(app)
    response = upload(client, amy, h, images.png())
    assert response.status_code == 422 and response.json["errors"]["photo"]
    assert state(app) == before


def test_corrupt_metadata_writes_nothing_outside_the_json_log():
    """Found by a hostile review: Pillow's warning about corrupt EXIF went to stderr as a plain-text line."""
    import subprocess
    import sys

    script = ("import io, sys; from tests import images; from admin_api.profiles import photos; "
              "done = photos.process(io.BytesIO(images.jpeg_with_corrupt_exif()), max_bytes=2**22, max_pixels=10**6); "
              "print(done.width, done.height)")
    run = subprocess.run([sys.executable, "-W", "default", "-c", script], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parent.parent)
    assert run.returncode == 0 and run.stdout.split() == ["40", "30"] and run.stderr == "", run.stderr
