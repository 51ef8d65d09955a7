"""Helpers of the reliability tests: apps with their own pool settings, waiting on lock waiters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from crm.config import Settings
from crm.main import create_app


@asynccontextmanager
async def app_client(
    settings: Settings, database_url: str, **overrides: Any
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """The CRM (lifespan run) with `overrides` applied to `settings`, and an in-process client."""
    app = create_app(settings.model_copy(update=overrides), database_url=database_url)
    async with (
        LifespanManager(app, startup_timeout=10, shutdown_timeout=10),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as http,
    ):
        yield app, http


async def wait_for_lock_waiters(db: asyncpg.Connection[Any], count: int, within: float = 5.0) -> None:
    """Wait until `count` sessions of this database are blocked on a lock (our row lock).

    `db` is usually the connection holding the lock, inside its transaction, where PostgreSQL
    would show one frozen snapshot of pg_stat_activity; it is cleared before every look.
    """
    deadline = time.monotonic() + within
    waiting = 0
    while time.monotonic() < deadline:
        await db.execute("SELECT pg_stat_clear_snapshot()")
        waiting = await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"only {waiting} of {count} sessions are waiting on the lock after {within} s")


async def wait_for_other_sessions_to_end(db: asyncpg.Connection[Any], within: float = 5.0) -> None:
    """Wait until no session but `db` is connected to its database."""
    deadline = time.monotonic() + within
    others = 0
    while time.monotonic() < deadline:
        await db.execute("SELECT pg_stat_clear_snapshot()")
        others = await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        if others == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{others} other sessions still connected after {within} s")


async def poll_until(predicate: Callable[[], bool], within: float, step: float = 0.05) -> bool:
    """Whether `predicate` became true within `within` seconds (checked every `step`)."""
    deadline = time.monotonic() + within
    while not (done := predicate()):
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(step)
    return done
