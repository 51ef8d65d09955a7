"""Offset pagination as the rest of the system speaks it: `page`, `limit`, and the envelope."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field

MAX_LIMIT = 100
# Deeper than any real client goes; keeps OFFSET inside bigint and the query bounded.
MAX_PAGE = 1_000_000


class SortOrder(StrEnum):
    ASC = "ASC"
    DESC = "DESC"


@dataclass(frozen=True, slots=True)
class PageParams:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def _page_params(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number")] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = 10,
) -> PageParams:
    return PageParams(page=page, limit=limit)


Paging = Annotated[PageParams, Depends(_page_params)]


def parse_sort_order(value: str | None, default: SortOrder) -> SortOrder:
    """`sortOrder` is accepted in any case (`asc`, `Desc`), as the prototype did."""
    from crm.errors import ValidationFailed

    if value is None:
        return default
    try:
        return SortOrder(value.upper())
    except ValueError:
        raise ValidationFailed.field("sortOrder", "must be ASC or DESC") from None


SortOrderQuery = Annotated[
    str | None,
    Query(alias="sortOrder", max_length=4, pattern="^(?i:asc|desc)$", description="ASC or DESC, any case"),
]


class Pagination(BaseModel):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    total: int
    page: int
    limit: int
    total_pages: int = Field(alias="totalPages")
    has_next: bool = Field(alias="hasNext")
    has_prev: bool = Field(alias="hasPrev")

    @classmethod
    def of(cls, params: PageParams, total: int) -> Pagination:
        pages = (total + params.limit - 1) // params.limit
        return cls(
            total=total,
            page=params.page,
            limit=params.limit,
            total_pages=pages,
            has_next=params.page < pages,
            has_prev=params.page > 1,
        )


def envelope(key: str, items: list[Any], pagination: Pagination) -> dict[str, Any]:
    return {key: items, "pagination": pagination.model_dump(by_alias=True)}
