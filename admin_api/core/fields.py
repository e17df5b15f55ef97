"""Marshmallow fields and validators shared by the areas' schemas."""
from __future__ import annotations

import re
import unicodedata
from datetime import UTC

import marshmallow as ma

# Invisible or control characters have no place in names and addresses: they make look-alikes
# ("a\u200b@x" next to "a@x") and can reorder what an admin reads (U+202E). Joiners stay: scripts need them.
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}
_ALLOWED_FORMAT = {"\u200c", "\u200d"}  # zero-width non-joiner and joiner (Persian, Indic scripts, emoji)
_MULTILINE = {"\n", "\r", "\t"}


def invisible_characters(value: str, *, multiline: bool = False) -> bool:
    allowed = _ALLOWED_FORMAT | (_MULTILINE if multiline else set())
    return any(unicodedata.category(char) in _FORBIDDEN_CATEGORIES and char not in allowed for char in value)


class Text(ma.fields.String):
    """Human text (names, titles, descriptions): trimmed; no control or invisible formatting characters."""

    def __init__(self, *args, multiline: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.multiline = multiline

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if invisible_characters(text, multiline=self.multiline):
            raise ma.ValidationError("Must not contain control or invisible formatting characters.")
        return text


class QueryInteger(ma.fields.Integer):
    """An integer in a query string, in ASCII digits: int() alone also takes " 5", "1_0", "+5", "５" and "٣"."""

    DIGITS = re.compile(r"-?[0-9]+")

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not self.DIGITS.fullmatch(value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(ma.fields.Boolean):
    """JSON `true` or `false` only: in a body, 1, "yes" or "true" are mistakes, not booleans."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class FullMatch(ma.validate.Regexp):
    """The whole value matches the pattern (`re.match` with `$` would let a trailing newline through)."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


class Timestamp(ma.fields.AwareDateTime):
    """A timestamp: RFC 3339 with an offset in, UTC with a `Z` out (`2026-12-03T18:00:00.123456Z`).

    Dumping is written out because it runs for every timestamp of every list
    item: marshmallow's generic formatter was the slowest part of a page of users.
    """

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:  # 9999-12-31T23:59:59-00:01 is past the end of the calendar in UTC
            raise ma.ValidationError("Out of range.")
