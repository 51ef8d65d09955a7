"""The database pools' figures for /metrics, observed from outside crm.db, which creates the pools.

Two pools per worker process: SQLAlchemy's ("orm": transactions) and the asyncpg read pool
("read": single-statement reads). For each: its limit, open connections and connections in use
(read from the pool when published), and its checkouts: how many callers wait for a connection
right now, how many checkouts finished and how long they took, waiting and connecting included.
Checkouts are counted in plain attributes here, never in the metrics' shared memory, so a
request pays two clock reads for them; crm.observability.metrics publishes the figures every
second and at each scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection, QueuePool


@dataclass(slots=True)
class Checkouts:
    waiting: int = 0  # checkouts in progress: callers without a connection yet
    done: int = 0  # checkouts finished, with a connection or without (timed out)
    seconds: float = 0.0  # the time those took


@dataclass(frozen=True, slots=True)
class PoolFigures:
    limit: int
    open: int
    in_use: int
    waiting: int
    checkouts: int
    checkout_seconds: float


class ObservedEnginePool:
    """SQLAlchemy's pool of `engine`, with its checkouts timed.

    The engine takes every connection through `Pool.connect()`; it is wrapped on this pool
    object alone (the asyncio pool's waits happen inside it, on the request's greenlet).
    """

    name = "orm"

    def __init__(self, engine: AsyncEngine, limit: int) -> None:
        self.engine = engine
        self.limit = limit
        self.checkouts = checkouts = Checkouts()
        pool = engine.sync_engine.pool
        connect: Callable[[], PoolProxiedConnection] = pool.connect

        def timed_connect() -> PoolProxiedConnection:
            checkouts.waiting += 1
            started = perf_counter()
            try:
                return connect()
            finally:
                checkouts.waiting -= 1
                checkouts.done += 1
                checkouts.seconds += perf_counter() - started

        pool.connect = timed_connect  # type: ignore[method-assign]

    def figures(self) -> PoolFigures:
        pool = self.engine.sync_engine.pool
        in_use = pool.checkedout() if isinstance(pool, QueuePool) else 0
        idle = pool.checkedin() if isinstance(pool, QueuePool) else 0
        c = self.checkouts
        return PoolFigures(self.limit, in_use + idle, in_use, c.waiting, c.done, c.seconds)


class ObservedReadPool:
    """The asyncpg read pool, with its checkouts timed; everything else is the pool's own.

    asyncpg's Pool has __slots__, so its `acquire` cannot be wrapped in place: the application
    keeps this object as its read pool instead. `acquire()` works both ways asyncpg's does:
    awaited (then `release()`), or as an async context manager.
    """

    __slots__ = ("checkouts", "limit", "pool")
    name = "read"

    def __init__(self, pool: Any, limit: int) -> None:
        self.pool = pool
        self.limit = limit
        self.checkouts = Checkouts()

    def acquire(self, *, timeout: float | None = None) -> _TimedAcquire:
        return _TimedAcquire(self, timeout)

    async def release(self, connection: Any) -> None:
        await self.pool.release(connection)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)

    def figures(self) -> PoolFigures:
        size: int = self.pool.get_size()
        in_use = size - int(self.pool.get_idle_size())
        c = self.checkouts
        return PoolFigures(self.limit, size, in_use, c.waiting, c.done, c.seconds)

    async def _acquire(self, wait: float | None) -> Any:
        checkouts = self.checkouts
        checkouts.waiting += 1
        started = perf_counter()
        try:
            return await self.pool.acquire(timeout=wait)
        finally:
            checkouts.waiting -= 1
            checkouts.done += 1
            checkouts.seconds += perf_counter() - started


class _TimedAcquire:
    __slots__ = ("_connection", "_pool", "_timeout")

    def __init__(self, pool: ObservedReadPool, timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._connection: Any = None

    def __await__(self) -> Generator[Any, None, Any]:
        return self._pool._acquire(self._timeout).__await__()

    async def __aenter__(self) -> Any:
        self._connection = await self._pool._acquire(self._timeout)
        return self._connection

    async def __aexit__(self, *_: object) -> None:
        await self._pool.release(self._connection)
