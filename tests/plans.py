"""Test helpers for checking which indexes the service's statements would use."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from sqlalchemy import event
from starlette.applications import Starlette


@contextmanager
def statements(app: Starlette) -> Iterator[list[tuple[str, Any]]]:
    """The SQL (and parameters) the service sends while the block runs."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append((statement, parameters))

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def index_names(plan: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(plan, dict):
        if "Index Name" in plan:
            names.add(plan["Index Name"])
        for value in plan.values():
            names |= index_names(value)
    elif isinstance(plan, list):
        for value in plan:
            names |= index_names(value)
    return names


async def plan_indexes(db: asyncpg.Connection[Any], statement: str, parameters: Any) -> set[str]:
    # Table scans and plain index walks priced out (a small table makes either cheap): what is left
    # is a bitmap scan of an index that serves the search condition, or, if none can, a table scan.
    await db.execute("SET enable_seqscan = off; SET enable_indexscan = off; SET enable_indexonlyscan = off")
    raw = await db.fetchval("EXPLAIN (FORMAT JSON) " + statement, *parameters)
    return index_names(json.loads(raw))
