"""Lists: page/page_size/sort arguments, the page query, and the totals headers."""
from __future__ import annotations

import json
import math
import time

import marshmallow as ma
from flask import current_app
from sqlalchemy import func, select, text

from admin_api.core.fields import QueryInteger
from admin_api.extensions import db


def sort_field(*fields: str, default: str = "-created_at") -> ma.fields.String:
    """The `sort` argument of a list: one of its documented fields, `-` first for descending."""
    choices = [choice for name in fields for choice in (name, f"-{name}")]
    return ma.fields.String(load_default=default, validate=ma.validate.OneOf(choices),
                            metadata={"enum": choices, "description": "A field to sort by; `-` first for descending."})


class ListArgsSchema(ma.Schema):
    """page / page_size shared by every list; each area adds its filters and `sort = sort_field(...)`."""

    class Meta:
        unknown = ma.RAISE

    page = QueryInteger(load_default=1, validate=ma.validate.Range(min=1, max=1_000_000))
    page_size = QueryInteger(load_default=25, validate=ma.validate.Range(min=1, max=100))


class ResultPage:
    """One page of a list, with its total; the view turns it into body and headers."""

    def __init__(self, items: list, total: int, *, page: int, page_size: int, estimated: bool = False):
        self.items = items
        self.total = total
        self.page = page
        self.page_size = page_size
        self.estimated = estimated

    def headers(self) -> dict[str, str]:
        pages = math.ceil(self.total / self.page_size) if self.total else 0
        meta = {"total": self.total, "total_pages": pages}
        if pages:
            meta.update(first_page=1, last_page=pages)
            if self.page <= pages:
                meta["page"] = self.page
                if self.page > 1:
                    meta["previous_page"] = self.page - 1
                if self.page < pages:
                    meta["next_page"] = self.page + 1
        headers = {"X-Total-Count": str(self.total), "X-Pagination": json.dumps(meta)}
        if self.estimated:
            headers["X-Total-Count-Estimated"] = "true"
        return headers


def page_response(result: ResultPage):
    """Return value for a list view: the items and the list headers."""
    return result.items, 200, result.headers()


# From this many rows skipped, a page is found by its ids first. OFFSET walks past every skipped row, and for a
# plain page query each of those is read from the table; the ids alone come from the sort index (page 20,000 of
# 1,000,000 users: see bench/list_users.py). Shallower pages keep the one plain query.
DEEP_OFFSET = 1000


def paginate(stmt, *, args: dict, sort_columns: dict, id_column, estimate_table: str | None = None,
             kept_total=None) -> ResultPage:
    """Run one page of `stmt`, sorted by a documented field with the id as tie-breaker, and its total.

    The exact total rides along in the page query (an uncorrelated subquery the
    database evaluates once): one round trip, not two. It counts the rows,
    unless `kept_total` is given: a SELECT of the exact total the database keeps
    (a counter), read instead. `estimate_table` names the table when the list is
    unfiltered: on PostgreSQL a total above COUNT_ESTIMATE_THRESHOLD is then the
    planner's estimate instead of a full scan.
    """
    page, page_size, sort = args["page"], args["page_size"], args["sort"]
    descending = sort.startswith("-")
    column = sort_columns[sort.removeprefix("-")]
    order = (column.desc(), id_column.desc()) if descending else (column.asc(), id_column.asc())
    offset = (page - 1) * page_size
    if offset < DEEP_OFFSET:
        page_stmt = stmt.order_by(*order).offset(offset).limit(page_size)
    else:  # find the page's ids in the index alone, then read only those rows (a "deferred join")
        page_ids = stmt.with_only_columns(id_column).order_by(*order).offset(offset).limit(page_size)
        page_stmt = stmt.where(id_column.in_(page_ids)).order_by(*order)
    count = kept_total if kept_total is not None else select(func.count()).select_from(stmt.order_by(None).subquery())
    estimate = _estimated_rows(estimate_table) if estimate_table else None
    if estimate is not None and estimate >= current_app.config["COUNT_ESTIMATE_THRESHOLD"]:
        items = list(db.session.scalars(page_stmt))
        if 0 < len(items) < page_size:  # the last page: its total is known exactly
            return ResultPage(items, offset + len(items), page=page, page_size=page_size)
        return ResultPage(items, estimate, page=page, page_size=page_size, estimated=True)
    rows = db.session.execute(page_stmt.add_columns(count.scalar_subquery().label("total"))).all()
    items = [row[0] for row in rows]
    total = rows[0].total if rows else (0 if page == 1 else db.session.scalar(count))
    return ResultPage(items, total, page=page, page_size=page_size)


ESTIMATE_TTL = 30.0  # seconds a worker reuses a table's row estimate


def _estimated_rows(table: str) -> int | None:
    """PostgreSQL's row estimate for a table (kept by autovacuum/ANALYZE); None elsewhere.

    The estimate is itself approximate, so each app (worker) keeps it for
    ESTIMATE_TTL seconds instead of asking on every request.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return None
    cache: dict[str, tuple[float, int | None]] = current_app.extensions.setdefault("row_estimates", {})
    now = time.monotonic()
    cached = cache.get(table)
    if cached and now - cached[0] < ESTIMATE_TTL:
        return cached[1]
    estimate = db.session.scalar(
        text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:table)"), {"table": table}
    )
    value = int(estimate) if estimate is not None and estimate >= 0 else None
    cache[table] = (now, value)
    return value
