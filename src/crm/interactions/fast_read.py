"""The interactions' plain read for crm.fastpath: all-time statistics (the dashboards' poll)."""

from __future__ import annotations

from typing import Any

import asyncpg

from crm.common.dates import DateRange
from crm.fastpath import Answer, PlainRead, no_query
from crm.interactions import aggregates
from crm.interactions.models import InteractionType

_ALL_TIME = aggregates.split(DateRange(None, None))


async def _statistics(connection: asyncpg.Connection, _: Any) -> Answer:
    document = await aggregates.statistics_document(connection, _ALL_TIME, [t.value for t in InteractionType])
    return Answer(document.encode())


READS = (PlainRead("interactions", no_query, _statistics, path="/api/interactions/statistics"),)
