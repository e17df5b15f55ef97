import functools
import zoneinfo

import langcodes
import marshmallow as ma
import phonenumbers

from admin_api.core.fields import Text, Timestamp
from admin_api.users.schemas import DISPLAY_NAME_MAX


class _Optional(ma.fields.String):
    """A trimmed string where an empty value means "none" (a cleared form input)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        return self._parse(text) if text else None

    def _parse(self, text: str) -> str:
        return text


class PhoneNumber(_Optional):
    """An international phone number, stored in E.164 (`+41446681800`)."""

    def _parse(self, text: str) -> str:
        if not text.startswith("+"):
            raise ma.ValidationError("Must start with + and the country code (E.164), e.g. +41 44 668 18 00.")
        try:
            number = phonenumbers.parse(text, None)
        except phonenumbers.NumberParseException:
            raise ma.ValidationError("Not a phone number.")
        if number.extension:
            raise ma.ValidationError("Extensions cannot be stored (E.164 has none).")
        if not phonenumbers.is_valid_number(number):
            raise ma.ValidationError("Not a valid number for its country code.")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class LanguageTag(_Optional):
    """A BCP 47 language tag whose subtags are in the IANA registry, stored standardized (`en_us` -> `en-US`)."""

    MESSAGE = "Not a valid BCP 47 language tag (e.g. en, en-US, zh-Hant-TW)."

    def _parse(self, text: str) -> str:
        if len(text) > 64:
            raise ma.ValidationError(self.MESSAGE)
        try:
            if langcodes.tag_is_valid(text):
                return langcodes.standardize_tag(text)
        except (langcodes.LanguageTagError, ValueError):
            pass
        raise ma.ValidationError(self.MESSAGE)


# Files of a zoneinfo folder that are not zones a person lives in: the server's own zone, tzdata's "Factory"
# placeholder, and the alternative trees.
_NOT_PLACES = {"localtime", "factory", "posixrules"}


@functools.cache
def _time_zones() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()
            if name.lower() not in _NOT_PLACES and not name.startswith(("posix/", "right/"))}


class TimeZoneName(_Optional):
    """An IANA time zone name that zoneinfo knows, in its canonical spelling (`europe/zurich` -> `Europe/Zurich`)."""

    def _parse(self, text: str) -> str:
        name = _time_zones().get(text.lower())
        if name is None:
            raise ma.ValidationError("Not an IANA time zone name (e.g. Europe/Zurich, America/New_York, UTC).")
        return name


class ProfileSchema(ma.Schema):
    user_id = ma.fields.UUID(dump_only=True)
    display_name = ma.fields.String(dump_only=True, metadata={"description": "The user's display_name."})
    title = ma.fields.String(dump_only=True, allow_none=True)
    bio = ma.fields.String(dump_only=True, allow_none=True)
    phone = ma.fields.String(dump_only=True, allow_none=True, metadata={"description": "E.164"})
    locale = ma.fields.String(dump_only=True, allow_none=True, metadata={"description": "BCP 47 language tag"})
    timezone = ma.fields.String(dump_only=True, allow_none=True, metadata={"description": "IANA time zone name"})
    photo_url = ma.fields.String(dump_only=True, allow_none=True, metadata={
        "description": "Where to GET the photo (bearer token needed); it changes with every new photo. null: none."})
    updated_at = Timestamp(dump_only=True)


class ProfileUpdateSchema(ma.Schema):
    """The whole editable profile: a field left out (or empty) is cleared. Read-only fields are refused."""

    display_name = Text(required=True, validate=ma.validate.Length(min=1, max=DISPLAY_NAME_MAX),
                        metadata={"description": "Also the user's display_name (one value)."})
    title = Text(load_default=None, allow_none=True, validate=ma.validate.Length(max=100))
    bio = Text(load_default=None, allow_none=True, multiline=True, validate=ma.validate.Length(max=2000))
    phone = PhoneNumber(load_default=None, allow_none=True, metadata={
        "description": "International number (E.164 once normalized): `+41 44 668 18 00` is stored `+41446681800`."})
    locale = LanguageTag(load_default=None, allow_none=True, metadata={
        "description": "BCP 47 language tag, stored standardized (`en_us` -> `en-US`)."})
    timezone = TimeZoneName(load_default=None, allow_none=True, metadata={
        "description": "IANA time zone name, e.g. `Europe/Zurich`."})

    @ma.post_load
    def empty_means_none(self, data, **_kwargs):
        return {key: (None if value == "" else value) for key, value in data.items()}


class PhotoUploadSchema(ma.Schema):
    photo = ma.fields.Raw(
        required=True,
        error_messages={"required": "Missing: send the image as the multipart/form-data part `photo`."},
        metadata={"type": "string", "format": "binary",
                  "description": "JPEG, PNG, WebP or GIF; at most 5 MiB and 40 megapixels (server settings)."},
    )


class PhotoQueryArgsSchema(ma.Schema):
    v = ma.fields.String(validate=ma.validate.Length(max=64), metadata={
        "description": "The version in photo_url (only makes the URL change with the photo; ignored otherwise)."})
