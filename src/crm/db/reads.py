"""Single-statement reads: the asyncpg read pool and statements compiled once for it.

Endpoints declared with database="read" run their one statement on a connection of this pool
in autocommit: no ORM, no BEGIN/COMMIT round trips; the statement is its own snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Select, TextClause
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql.dml import ReturningInsert

from crm.config import Settings
from crm.db.connect import connect_timeout, driver_dsn, server_settings, watch_for_dead_peer
from crm.errors import DatabaseUnavailable, DomainError, is_connection_lost

_DRIVER_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A select() (or an insert() ... returning()) compiled once for asyncpg, to run on the read
    pool with values by name.

    Hot reads keep typed statements but skip SQLAlchemy's per-execution work (cache key,
    result processing): build the statement once per shape over bindparam()s, then fetch
    with the request's values. Bound literals inside the statement keep their own values.
    """

    sql: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]

    @classmethod
    def of(
        cls, statement: Select[*tuple[Any, ...]] | ReturningInsert[*tuple[Any, ...]] | TextClause
    ) -> DriverStatement:
        compiled = statement.compile(dialect=_DRIVER_DIALECT)
        names = tuple(compiled.positiontup or ())
        defaults = {name: compiled.binds[name].effective_value for name in names}
        return cls(compiled.string, names, defaults)

    async def fetch(self, connection: asyncpg.Connection, values: Mapping[str, Any]) -> list[asyncpg.Record]:
        merged = {**self.defaults, **values}
        rows: list[asyncpg.Record] = await connection.fetch(self.sql, *(merged[name] for name in self.names))
        return rows


async def _no_reset(connection: asyncpg.Connection) -> None:
    """The read pool's connections only ever run single read statements in autocommit: there
    is no session state to reset, so skip asyncpg's default reset (a round trip per request)."""
    del connection


async def create_read_pool(settings: Settings, database_url: str) -> asyncpg.Pool:
    """The asyncpg pool for single-statement reads (endpoints declared with database="read").

    Separate from SQLAlchemy's pool because those reads need none of it: no ORM, no
    transaction, and no pre-ping (a round trip per checkout); a connection that died is
    noticed by the statement itself, answered as 503, and replaced by the pool.
    """
    pool: asyncpg.Pool = await asyncpg.create_pool(
        driver_dsn(database_url),
        min_size=0,
        max_size=settings.db_pool_size,
        timeout=connect_timeout(settings),
        command_timeout=settings.db_client_timeout,  # see create_engine
        init=lambda connection: _watched(connection, settings),
        reset=_no_reset,
        server_settings={
            **server_settings(settings, "crm-read"),
            # These reads look rows up by key: the best plan never depends on the value, and
            # PostgreSQL's default would keep re-planning them (planning the customer + contacts
            # join took 4x as long as running it).
            "plan_cache_mode": "force_generic_plan",
            # A generic plan's estimates for a range parameter are a third of the table, which
            # puts some of these short reads past jit_above_cost: compiling them took 1-1.5 s
            # (a figure-filtered customer list) for a statement that runs in under a millisecond.
            "jit": "off",
        },
    )
    return pool


async def _watched(connection: asyncpg.Connection, settings: Settings) -> None:
    watch_for_dead_peer(connection, settings)


class ReadPoolExhausted(DatabaseUnavailable):
    """No pooled read connection within the pool timeout: answered like SQLAlchemy's pool timeout."""


@asynccontextmanager
async def read_connection(pool: asyncpg.Pool, wait: float) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the read pool, waiting at most `wait` seconds for one.

    asyncio.timeout rather than acquire(timeout=...), which wraps the wait in a task of its own.
    """
    try:
        async with asyncio.timeout(wait):
            connection = await pool.acquire()
    except TimeoutError:
        raise ReadPoolExhausted from None
    try:
        yield connection
    except DomainError:
        raise  # an answer (404, 422...), not a failure: the connection is fine
    except BaseException as exc:
        # Skipping the reset also skips its check that the connection still works, so a
        # connection that saw any failure (lost, cancelled mid-statement, timed out) is
        # dropped rather than handed to the next request; the pool opens a new one.
        connection.terminate()
        if isinstance(exc, asyncio.CancelledError) or not is_connection_lost(exc):
            raise
        raise DatabaseUnavailable() from exc  # its statements only read: nothing was changed
    finally:
        await pool.release(connection)
