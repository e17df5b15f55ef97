"""Marshmallow fields shared by the areas' schemas."""
from __future__ import annotations

from datetime import UTC

import marshmallow as ma


class Timestamp(ma.fields.AwareDateTime):
    """An output timestamp: RFC 3339 in UTC with a `Z` (`2026-12-03T18:00:00.123456Z`).

    Loading is AwareDateTime's (an offset is required). Dumping is written out
    because it runs for every timestamp of every list item: marshmallow's
    generic formatter was the slowest part of dumping a page of users.
    """

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
