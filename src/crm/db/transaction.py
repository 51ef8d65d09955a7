"""Transactions: the engine and session factory, and the one transaction of a request.

Every write, and every read that needs more than one statement to be consistent, runs in a
transaction opened by `request_transaction` (the endpoint layer does it for endpoints declared
with database="transaction"): committed before the answer is sent, rolled back on error, and
never retried: a connection lost after a write was sent is answered OutcomeUnknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext, ExecutionContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from starlette.types import Scope

from crm.config import Settings
from crm.db.connect import async_url, connect_timeout, server_settings, watch_for_dead_peer
from crm.errors import (
    DatabaseUnavailable,
    DomainError,
    OutcomeUnknown,
    ServiceUnavailable,
    ShuttingDown,
    is_connection_lost,
)

log = structlog.get_logger("crm.db")


def create_engine(settings: Settings, database_url: str) -> AsyncEngine:
    engine = create_async_engine(
        async_url(database_url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        # No pre-ping: on asyncpg it costs three round trips (BEGIN, a no-op, ROLLBACK) per
        # checkout, more than most requests' own statements. A connection that died is
        # noticed by its first statement instead: that request answers 503 (it may retry),
        # and SQLAlchemy discards every connection older than the failure.
        pool_pre_ping=False,
        connect_args={
            "timeout": connect_timeout(settings),
            # asyncpg's limit on every call of the connection (statements, BEGIN, COMMIT,
            # ROLLBACK): a database that stops answering while the connection stays open
            # (a paused VM, a black-holed network) costs a call this long, then TimeoutError.
            "command_timeout": settings.db_client_timeout,
            "server_settings": server_settings(settings, "crm"),
        },
    )

    def on_connect(_: Any, record: ConnectionPoolEntry) -> None:
        watch_for_dead_peer(record.driver_connection, settings)

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "before_cursor_execute", _note_statement)
    event.listen(engine.sync_engine, "handle_error", _close_on_client_timeout)
    return engine


def _close_on_client_timeout(context: ExceptionContext) -> None:
    """Close a connection whose call ran out of time (asyncpg raises TimeoutError), at once.

    asyncpg answers its own timeout with a cancel request over a new connection, and makes
    every later call on the connection wait for that cancel first, up to the limit again:
    against a database that stopped answering, the ROLLBACK of a failed `begin()` block would
    double the wait. Closed, every later call fails at once and the pool opens a new one.
    """
    if not isinstance(context.original_exception, TimeoutError) or context.connection is None:
        return
    with contextlib.suppress(Exception):
        driver = context.connection.connection.driver_connection
        if driver is not None:
            driver.terminate()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


# --- the transaction of a request ----------------------------------------------------------


@dataclass(slots=True, eq=False)
class TransactionProgress:
    """How far a transaction got: whether a write may have reached the database, and on which
    driver connections, so a failure can be answered truthfully and the connections dropped."""

    wrote: bool = False
    drivers: list[asyncpg.Connection] = field(default_factory=list)


_progress: ContextVar[TransactionProgress | None] = ContextVar("crm_transaction_progress", default=None)

# Statements that never change rows. Anything else counts as a write, conservatively: a
# `WITH` may hold an INSERT, and a statement of unknown shape may be one.
_READ_ONLY = re.compile(r"\s*(SELECT|SET|SHOW)\b", re.IGNORECASE)
_DML = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)


def _is_write(statement: str, context: ExecutionContext | None) -> bool:
    if context is not None and (context.isinsert or context.isupdate or getattr(context, "isdelete", False)):
        return True
    if _READ_ONLY.match(statement):
        return False
    if statement.lstrip()[:4].upper() == "WITH":
        return _DML.search(statement) is not None
    return True


def _note_statement(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: ExecutionContext | None, many: bool
) -> None:
    """Engine hook, before each statement goes to the driver: note it in the running transaction."""
    del cursor, parameters, many
    progress = _progress.get()
    if progress is None:
        return
    driver = conn.connection.driver_connection
    if driver is None or driver.is_closed():
        return  # the driver refuses to send anything on a connection it knows is gone
    if not any(d is driver for d in progress.drivers):
        progress.drivers.append(driver)
    if not progress.wrote and _is_write(statement, context):
        progress.wrote = True


async def _discard(session: AsyncSession, progress: TransactionProgress) -> None:
    """Drop the session's connections without another word to the server.

    A rollback would be one more call on a connection that just failed: against a database
    that stopped answering it costs the whole client-side limit again. Closing the socket
    makes PostgreSQL roll back whatever is not committed.
    """
    for driver in progress.drivers:
        driver.terminate()
    with contextlib.suppress(Exception):
        await session.invalidate()


async def _rollback(session: AsyncSession, progress: TransactionProgress) -> None:
    try:
        await session.rollback()
    except Exception as exc:  # noqa: BLE001 - the request's own error is the one to report
        log.warning("rollback failed, connection discarded", error=type(exc).__name__)
        await _discard(session, progress)
    except BaseException:  # cancelled while rolling back: the socket's close rolls back
        await _discard(session, progress)
        raise


async def _end_failed(session: AsyncSession, progress: TransactionProgress, exc: BaseException) -> DomainError | None:
    """End a transaction that failed with `exc`; the domain error to raise instead, if any."""
    if isinstance(exc, DomainError) or not is_connection_lost(exc):
        # An answer (404, 409...), a bug, or an error the server answered: the connection is
        # fine and the server has already aborted the transaction or will on ROLLBACK.
        await _rollback(session, progress)
        return None
    await _discard(session, progress)
    if isinstance(exc, asyncio.CancelledError):
        return None  # the cancelled task must stop; `interrupted` tells the client what happened
    if progress.wrote:
        log.warning("connection lost after a write, outcome unknown", error=type(exc).__name__)
        return OutcomeUnknown()
    return DatabaseUnavailable()


@asynccontextmanager
async def transaction(
    maker: async_sessionmaker[AsyncSession], progress: TransactionProgress | None = None
) -> AsyncIterator[AsyncSession]:
    """One transaction: committed if the block completes, rolled back if it raises.

    Nothing is ever sent twice. When the connection fails (dropped, no answer within the
    client-side limit, cancelled) after a write was handed to the driver, the write may have
    been applied and even committed: that is OutcomeUnknown (503), never a retry and never
    "nothing was changed". Before any write it is DatabaseUnavailable (503, safe to retry).
    Errors the server answered (constraint, deadlock, statement_timeout) propagate as raised:
    the transaction is then known to be rolled back.
    """
    progress = progress if progress is not None else TransactionProgress()
    token = _progress.set(progress)
    try:
        async with maker() as session:
            try:
                yield session
                await session.commit()
            except BaseException as exc:
                error = await _end_failed(session, progress, exc)
                if error is None:
                    raise
                raise error from exc
    finally:
        with contextlib.suppress(ValueError):  # ended in another context: nothing to restore there
            _progress.reset(token)


_REQUEST_TRANSACTIONS = "crm.transactions"


@asynccontextmanager
async def request_transaction(scope: Scope, maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """The request's transaction (see `transaction`), known to `interrupted` while it runs."""
    progress = TransactionProgress()
    scope.setdefault("state", {}).setdefault(_REQUEST_TRANSACTIONS, []).append(progress)
    async with transaction(maker, progress) as session:
        yield session


def interrupted(scope: Scope) -> ServiceUnavailable:
    """What to tell the client of a request cancelled before it answered (end of the shutdown
    grace period): whether one of its transactions may have written something."""
    transactions: list[TransactionProgress] = scope.get("state", {}).get(_REQUEST_TRANSACTIONS, [])
    return OutcomeUnknown() if any(t.wrote for t in transactions) else ShuttingDown()
