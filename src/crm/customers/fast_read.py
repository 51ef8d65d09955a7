"""The customers' plain reads for crm.fastpath: a customer by id, the first pages of the list,
the segments. Each parses strictly and returns None for anything unusual (see crm.fastpath)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg

from crm.common.concurrency import etag
from crm.common.pagination import MAX_LIMIT, MAX_PAGE, Cursor, PageParams, SortOrder
from crm.customers import service
from crm.customers.router import list_page_json
from crm.customers.schemas import CustomerDetail, Segments
from crm.errors import DomainError
from crm.fastpath import Answer, PlainRead, no_query

_ID_LENGTH = 36  # canonical 8-4-4-4-12 form; other spellings FastAPI accepts take the long way
_DIGITS = re.compile(r"[1-9][0-9]{0,6}")
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,2048}")


def _customer_id(tail: str, query: bytes) -> object | None:
    if query:
        return None
    try:
        return uuid.UUID(tail)
    except ValueError:
        return None


async def _customer(connection: asyncpg.Connection, customer_id: Any) -> Answer:
    data = await service.read_customer(connection, customer_id)
    body = CustomerDetail.model_validate(data).model_dump_json(by_alias=True).encode()
    return Answer(body, ((b"etag", etag(data["version"]).encode()),))


def _list_params(tail: str, query: bytes) -> object | None:
    """`page`, `limit` and `cursor` alone, each at most once, each plainly valid; else None."""
    values: dict[str, str] = {}
    for pair in query.decode("latin-1").split("&") if query else ():
        name, equals, value = pair.partition("=")
        if not equals or name not in {"page", "limit", "cursor"} or name in values:
            return None
        values[name] = value
    page, limit = values.get("page", "1"), values.get("limit", "10")
    if not (_DIGITS.fullmatch(page) and _DIGITS.fullmatch(limit)):
        return None
    if int(page) > MAX_PAGE or int(limit) > MAX_LIMIT:
        return None
    cursor = values.get("cursor")
    if cursor is not None and not _CURSOR.fullmatch(cursor):
        return None
    try:
        decoded = Cursor.decode(cursor) if cursor is not None else None
    except DomainError:
        return None
    return PageParams(page=int(page), limit=int(limit), cursor=decoded)


async def _list(connection: asyncpg.Connection, paging: Any) -> Answer:
    items, total, next_cursor = await service.list_customers(
        connection, service.CustomerFilters(), paging, "created_at", SortOrder.DESC
    )
    return Answer(list_page_json(items, paging, total, next_cursor))


async def _segments(connection: asyncpg.Connection, _: Any) -> Answer:
    data = await service.segments(connection)
    return Answer(Segments.model_validate(data).model_dump_json(by_alias=True).encode())


READS = (
    PlainRead("customers", no_query, _segments, path="/api/customers/segments"),
    PlainRead("customers", _list_params, _list, path="/api/customers"),
    PlainRead("customers", _customer_id, _customer, prefix="/api/customers/", tail_length=_ID_LENGTH),
)
