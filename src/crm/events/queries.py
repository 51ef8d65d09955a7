"""The feed's read statements, on the read pool's driver connection.

The feed walks uq_events_feed_position from the cursor; the filters are checked on the rows
the walk meets. $1 is the feed position to continue after, $2 the limit.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

_FEED = {
    (False, False): """
        SELECT id, type, customer_id, subject, sequence, time, data::text AS data, feed_position
        FROM events WHERE feed_position > $1
        ORDER BY feed_position LIMIT $2""",
    (True, False): """
        SELECT id, type, customer_id, subject, sequence, time, data::text AS data, feed_position
        FROM events WHERE feed_position > $1 AND type = $3
        ORDER BY feed_position LIMIT $2""",
    (False, True): """
        SELECT id, type, customer_id, subject, sequence, time, data::text AS data, feed_position
        FROM events WHERE feed_position > $1 AND customer_id = $3
        ORDER BY feed_position LIMIT $2""",
    (True, True): """
        SELECT id, type, customer_id, subject, sequence, time, data::text AS data, feed_position
        FROM events WHERE feed_position > $1 AND type = $3 AND customer_id = $4
        ORDER BY feed_position LIMIT $2""",
}


async def feed(
    connection: asyncpg.Connection, after: int, event_type: str | None, customer_id: UUID | None, limit: int
) -> list[asyncpg.Record]:
    """Up to `limit` published events after feed position `after`, in feed order."""
    values: list[object] = [after, limit]
    if event_type is not None:
        values.append(event_type)
    if customer_id is not None:
        values.append(customer_id)
    rows: list[asyncpg.Record] = await connection.fetch(_FEED[event_type is not None, customer_id is not None], *values)
    return rows
