"""Helpers of the rate-limit tests: apps with their own limiter settings, Redis, captured logs."""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from crm.config import Settings
from crm.main import create_app
from crm.ratelimit.service import WINDOW_SECONDS, RateLimiter

REDIS_URL = "redis://127.0.0.1:6379/15"


async def redis_answers(url: str = REDIS_URL) -> bool:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()


def mid_window() -> float:
    """A clock value 30.5 s into the current window: far from either edge, so a test cannot straddle one."""
    return math.floor(time.time() / WINDOW_SECONDS) * WINDOW_SECONDS + 30.5


@asynccontextmanager
async def limited_app(
    settings: Settings, database_url: str, *, frozen_at: float | None = None, **overrides: Any
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """The CRM with `overrides` applied to the test settings; `frozen_at` pins the limiter's clock."""
    app_settings = settings.model_copy(update=overrides)
    app = create_app(app_settings, database_url=database_url)
    if frozen_at is not None:
        limiter: RateLimiter = app.state.rate_limiter
        limiter.clock = lambda: frozen_at
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as http,
    ):
        yield app, http


class EventCollector(logging.Handler):
    """Collects the `event` of every structlog record a logger emits."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        event = record.msg if isinstance(record.msg, dict) else {"event": record.getMessage()}
        self.records.append({**event, "level": record.levelname})

    def events(self, level: str | None = None) -> list[str]:
        return [str(r["event"]) for r in self.records if level is None or r["level"] == level]


@contextmanager
def collect_events(logger_name: str) -> Iterator[EventCollector]:
    logger = logging.getLogger(logger_name)
    handler = EventCollector()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class HungServer:
    """A TCP server that accepts connections and never answers: a Redis that hangs."""

    def __init__(self) -> None:
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> HungServer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def _accept(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.append(writer)  # kept open, never written to

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/15"

    async def __aexit__(self, *_: object) -> None:
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
