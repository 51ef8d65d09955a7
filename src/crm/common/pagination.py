"""Pagination as the rest of the system speaks it (`page`, `limit`, the envelope), plus cursors.

Offset pages cost more the deeper they go; a cursor (`pagination.nextCursor`, passed back
as `cursor`) continues after the last row seen, so every page costs the same as the first.
Cursors are opaque to clients: base64url JSON naming the order they were made for.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, computed_field

MAX_LIMIT = 100
# Deeper than any real client goes; keeps OFFSET inside bigint and the query bounded.
MAX_PAGE = 1_000_000


class SortOrder(StrEnum):
    ASC = "ASC"
    DESC = "DESC"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the previous page ended: the sort it was made for, and its last row's key."""

    sort_by: str
    order: str
    value: Any  # the last row's sort value, JSON-encoded (dates as ISO strings)
    id: str

    def encode(self) -> str:
        raw = json.dumps([self.sort_by, self.order, self.value, self.id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        from crm.errors import ValidationFailed

        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            sort_by, order, value, id_ = json.loads(raw)
            if not (isinstance(sort_by, str) and isinstance(order, str) and isinstance(id_, str)):
                raise TypeError
            if value is not None and not isinstance(value, str):
                raise TypeError
        except (binascii.Error, ValueError, TypeError):
            raise ValidationFailed.field("cursor", "is not a cursor this service issued") from None
        return cls(sort_by, order, value, id_)

    def newest_first(self, scope: str) -> tuple[datetime, UUID]:
        """The (moment, id) a newest-first list (history, trash) ended at; 422 for a cursor
        another list (or another customer's) issued, or one whose key is not a moment and an id."""
        from crm.errors import ValidationFailed

        if self.sort_by != scope or self.order != SortOrder.DESC.value:
            raise ValidationFailed.field("cursor", "was issued by another list")
        try:
            moment = datetime.fromisoformat(str(self.value))
            if moment.tzinfo is None:
                raise ValueError(self.value)
            return moment, UUID(self.id)
        except (ValueError, OverflowError):
            raise ValidationFailed.field("cursor", "is not a cursor this service issued") from None


@dataclass(frozen=True, slots=True)
class PageParams:
    page: int
    limit: int
    cursor: Cursor | None = None

    @property
    def offset(self) -> int:
        return 0 if self.cursor is not None else (self.page - 1) * self.limit


def parse_sort_order(value: str | None, default: SortOrder) -> SortOrder:
    """`sortOrder` is accepted in any case (`asc`, `Desc`), as the prototype did."""
    from crm.errors import ValidationFailed

    if value is None:
        return default
    try:
        return SortOrder(value.upper())
    except ValueError:
        raise ValidationFailed.field("sortOrder", "must be ASC or DESC") from None


class CappedTotal(int):
    """A total that stopped counting at its value: there are at least this many, maybe more.

    Lists whose exact total would need a scan (a free-text filter over millions of rows)
    count up to a cap and answer this; Pagination shows it as `"totalCapped": true`.
    """

    __slots__ = ()


class Pagination(BaseModel):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    total: int = Field(description="how many items the list has; with `totalCapped`, at least this many")
    page: int | None = Field(description="null when the page was asked for by `cursor`")
    limit: int
    total_pages: int = Field(alias="totalPages")
    has_next: bool = Field(alias="hasNext")
    has_prev: bool = Field(alias="hasPrev")
    # Left out of the answer unless true, like nextCursor: most lists always count exactly.
    total_capped: bool = Field(
        default=False,
        alias="totalCapped",
        exclude_if=lambda value: not value,
        description=(
            "present (and true) only when `total` is a cap, not a count: a list filtered by free text "
            "(`search`) or by an order figure (`minTotalSpent`, `hasOrders`, ...) counts its matches up to "
            "10,000 and answers `total: 10000, totalCapped: true` beyond that (`totalPages` follows from "
            "the cap; `hasNext` and `nextCursor` from the page)"
        ),
    )
    # Left out of the answer when there is no next page (and on lists without cursors).
    next_cursor: str | None = Field(
        default=None,
        alias="nextCursor",
        exclude_if=lambda value: value is None,
        description="pass as `cursor` for the next page (lists that support it)",
    )

    @classmethod
    def of(cls, params: PageParams, total: int, next_cursor: str | None = None) -> Pagination:
        """The envelope's pagination; a CappedTotal `total` is answered with `totalCapped`."""
        capped = isinstance(total, CappedTotal)
        pages = (total + params.limit - 1) // params.limit
        if params.cursor is not None:
            return cls(
                total=total,
                page=None,
                limit=params.limit,
                total_pages=pages,
                has_next=next_cursor is not None,
                has_prev=True,
                total_capped=capped,
                next_cursor=next_cursor,
            )
        return cls(
            total=total,
            page=params.page,
            limit=params.limit,
            total_pages=pages,
            # Past a capped total's pages there may be more: the page itself says (a row beyond it).
            has_next=params.page < pages or (capped and next_cursor is not None),
            has_prev=params.page > 1,
            total_capped=capped,
            next_cursor=next_cursor,
        )


_PROTOTYPE_FORM = "the prototype front end's form of `pagination.{}`: the same value"


class PagedList(BaseModel):
    """A list answer: a subclass's items, `pagination`, and beside it the page figures the
    prototype front end reads at the top level (`total`, `page`, `limit`, `totalPages`)."""

    model_config = ConfigDict(from_attributes=True)

    pagination: Pagination

    @computed_field(description=_PROTOTYPE_FORM.format("total"))  # type: ignore[prop-decorator]
    @property
    def total(self) -> int:
        return self.pagination.total

    @computed_field(description=_PROTOTYPE_FORM.format("page"))  # type: ignore[prop-decorator]
    @property
    def page(self) -> int | None:
        return self.pagination.page

    @computed_field(description=_PROTOTYPE_FORM.format("limit"))  # type: ignore[prop-decorator]
    @property
    def limit(self) -> int:
        return self.pagination.limit

    @computed_field(alias="totalPages", description=_PROTOTYPE_FORM.format("totalPages"))  # type: ignore[prop-decorator]
    @property
    def total_pages(self) -> int:
        return self.pagination.total_pages
