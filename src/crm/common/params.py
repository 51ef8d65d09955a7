"""Parameters several endpoints share, as fields of their params models (see crm.api.inputs)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from crm.api.inputs import HEADER
from crm.common.dates import DateRange, parse_range
from crm.common.pagination import MAX_LIMIT, MAX_PAGE, Cursor, PageParams, SortOrder, parse_sort_order

Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description="items per page")]
SearchLimit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description="most results to return")]
SortOrderParam = Annotated[
    str | None,
    Field(alias="sortOrder", max_length=4, pattern="^(?i:asc|desc)$", description="ASC or DESC, any case"),
]

IfMatch = Annotated[
    str | None,
    Field(
        alias="If-Match",
        max_length=1024,
        description='Optional `"<version>"` from an earlier ETag; a stale one gets 412 and changes nothing',
    ),
    HEADER,
]
IdempotencyKey = Annotated[
    str | None,
    Field(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x20-\x7e]+$",
        description="Optional: 1-255 printable ASCII characters. Retrying a POST with the same key and body "
        "within 24 h replays the first answer instead of creating a second record.",
    ),
    HEADER,
]

_DATE_HELP = "ISO 8601 date or date-time (UTC unless an offset is given)"
StartDate = Annotated[str | None, Field(alias="startDate", description=_DATE_HELP + "; inclusive")]
EndDate = Annotated[
    str | None, Field(alias="endDate", description=_DATE_HELP + "; inclusive, a date-only value covers that whole day")
]


class CursorPageQuery(BaseModel):
    """`page` and `limit`, or `cursor` (keyset pagination: every page costs what the first does)."""

    page: Annotated[int, Field(ge=1, le=MAX_PAGE, description="1-based page number (ignored with `cursor`)")] = 1
    limit: Limit = 10
    cursor: Annotated[
        str | None,
        Field(
            max_length=2048,
            pattern=r"^[A-Za-z0-9_-]+$",
            description="`pagination.nextCursor` of the previous answer: continue after it (instead of `page`)",
        ),
    ] = None

    def paging(self) -> PageParams:
        return PageParams(self.page, self.limit, Cursor.decode(self.cursor) if self.cursor is not None else None)


class SortedQuery(BaseModel):
    sort_order: SortOrderParam = None

    def order(self, default: SortOrder = SortOrder.DESC) -> SortOrder:
        return parse_sort_order(self.sort_order, default)


class DateRangeQuery(BaseModel):
    start_date: StartDate = None
    end_date: EndDate = None

    def dates(self) -> DateRange:
        return parse_range(self.start_date, self.end_date)
