"""The customer search's plain read for crm.fastpath: `?query=...` with an optional `&limit=`.

Staff type into the search box all day, so each keystroke's request skips FastAPI's routing,
dependency solving and validation (see crm.fastpath). The parse is strict and returns None,
leaving the request to the application, for anything it does not fully understand: another
parameter, one given twice, a limit not written plainly, percent-escapes that are not UTF-8, or
a query the route would refuse (its 422s stay the application's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import asyncpg

from crm.common.search import MAX_QUERY, normalize_query
from crm.customers import service
from crm.customers.router import search_json
from crm.errors import DomainError
from crm.fastpath import Answer, PlainRead

# As the route's Query(ge=1, le=100) with its default of 10; any other spelling ("010", "+5")
# is the application's to judge.
_LIMIT = re.compile(r"[1-9][0-9]{0,2}")
_MAX_LIMIT = 100
_DEFAULT_LIMIT = "10"


@dataclass(frozen=True, slots=True)
class _Search:
    query: str
    limit: int


def _search_params(tail: str, raw: bytes) -> object | None:
    """`query` and `limit` alone, each at most once, each plainly valid; else None."""
    del tail
    if not raw or not raw.isascii():
        return None
    values: dict[str, str] = {}
    for pair in raw.decode("ascii").split("&"):
        name, equals, value = pair.partition("=")
        if not equals or name not in {"query", "limit"} or name in values:
            return None
        values[name] = value
    limit = values.get("limit", _DEFAULT_LIMIT)
    if not _LIMIT.fullmatch(limit) or int(limit) > _MAX_LIMIT:
        return None
    query = _query(values["query"]) if "query" in values else None
    return _Search(query, int(limit)) if query is not None else None


def _query(encoded: str) -> str | None:
    """The normalized query, or None where the route would answer 422 (or might decode otherwise)."""
    try:
        # As Starlette decodes a query string, except that bytes which are not UTF-8 are refused
        # here rather than replaced.
        text = unquote_plus(encoded, errors="strict")
    except UnicodeDecodeError:
        return None
    # SearchText's checks (length before trimming, no NUL), then the route's own.
    if len(text) > MAX_QUERY or "\x00" in text:
        return None
    try:
        return normalize_query(text)
    except DomainError:
        return None


async def _search(connection: asyncpg.Connection, parsed: Any) -> Answer:
    items = await service.search_customers(connection, parsed.query, parsed.limit)
    return Answer(search_json(items))


READS = (PlainRead("customers", _search_params, _search, path="/api/customers/search"),)
