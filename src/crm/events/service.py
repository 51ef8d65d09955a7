"""Reading events: the pull feed in publication order, and the relay's status."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import asyncpg

from crm.common.pagination import Cursor
from crm.config import Settings
from crm.errors import ValidationFailed
from crm.events import queries, relay
from crm.events.outbox import envelope
from crm.history.models import HistoryAction, HistoryEntity

# Every type an event can have, for the `type` filter.
TYPES = frozenset(f"crm.{entity.value}.{action.value}" for entity in HistoryEntity for action in HistoryAction)

_SCOPE = "events"


def check_type(value: str | None) -> str | None:
    if value is not None and value not in TYPES:
        raise ValidationFailed.field("type", f"must be one of: {', '.join(sorted(TYPES))}")
    return value


def after_position(cursor: Cursor | None) -> int:
    """The feed position a cursor continues after (0: from the start)."""
    if cursor is None:
        return 0
    if cursor.sort_by != _SCOPE or cursor.order != "ASC":
        raise ValidationFailed.field("after", "was issued by another list")
    try:
        position = int(cursor.id)
    except ValueError:
        raise ValidationFailed.field("after", "is not a cursor this service issued") from None
    if position < 0 or position >= 2**63:
        raise ValidationFailed.field("after", "is not a cursor this service issued")
    return position


def cursor_at(position: int) -> str:
    return Cursor(_SCOPE, "ASC", None, str(position)).encode()


async def feed_page(
    connection: asyncpg.Connection,
    after: Cursor | None,
    event_type: str | None,
    customer_id: UUID | None,
    limit: int,
) -> bytes:
    """The page as JSON: published events after the cursor, in the order they were published.

    A cursor names a feed position, given once and never again (crm.events.relay), and the
    relay commits its marks one after the other: a page read again from the same cursor has
    the same events, save those the retention purge or an erasure took since.
    """
    start = after_position(after)
    rows = await queries.feed(connection, start, check_type(event_type), customer_id, limit + 1)
    page = rows[:limit]
    last = page[-1]["feed_position"] if page else (start if after is not None else None)
    body: dict[str, Any] = {
        "events": [envelope(row) for row in page],
        "pagination": {
            "limit": limit,
            "hasNext": len(rows) > limit,
            "nextCursor": cursor_at(last) if last is not None else None,
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


async def status(connection: asyncpg.Connection, settings: Settings) -> dict[str, Any]:
    figures = await relay.backlog(connection)
    age = figures.oldest_age
    return {
        "backlog": figures.count,
        "oldest_unpublished_at": relay.utc_text(figures.oldest),
        "oldest_unpublished_age_seconds": None if age is None else round(age, 3),
        "last_published_at": relay.utc_text(figures.last_published),
        "leader": await relay.leader_present(connection),
        "broker": "rabbitmq" if settings.events_amqp_url else "none",
        "exchange": settings.events_exchange if settings.events_amqp_url else None,
        "retention_days": settings.events_retention_days,
    }
