"""How the service connects to PostgreSQL: URLs, session settings and bounded waits.

Shared by both ways the service reaches the database: transactions (crm.db.transaction) and
single-statement reads (crm.db.reads).
"""

from __future__ import annotations

import socket

import asyncpg
from sqlalchemy.engine import URL, make_url

from crm.config import Settings


def async_url(database_url: str) -> URL:
    """`postgresql://...` as the rest of the system writes it, driven by asyncpg."""
    url = make_url(database_url)
    if url.drivername in {"postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"}:
        url = url.set(drivername="postgresql+asyncpg")
    return url


def driver_dsn(database_url: str) -> str:
    """The same database as a plain `postgresql://` DSN, for asyncpg itself."""
    return async_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


# TCP keepalive on every connection: one whose server vanished without a word (host down,
# network cut, a paused VM) while it sat idle in a pool is noticed within
# IDLE + INTERVAL * COUNT seconds and closed, so no request waits on it.
_KEEPALIVE_IDLE = 5
_KEEPALIVE_INTERVAL = 2
_KEEPALIVE_COUNT = 3
_CONNECT_TIMEOUT = 5.0


def connect_timeout(settings: Settings) -> float:
    """Seconds to open a connection: at most the client-side limit of a call, at most 5."""
    limit = settings.db_client_timeout
    return _CONNECT_TIMEOUT if limit is None else min(_CONNECT_TIMEOUT, limit)


def watch_for_dead_peer(connection: asyncpg.Connection, settings: Settings) -> None:
    """Turn on TCP keepalives and TCP_USER_TIMEOUT on the connection's socket.

    asyncpg has no parameter for either (libpq's `keepalives_*` and `tcp_user_timeout` are not
    among its connection options, MagicStack/asyncpg#606), so they are set on the socket of
    its transport. TCP_USER_TIMEOUT bounds how long sent data may stay unacknowledged (a
    request written to a dead host) and, with keepalives on, how long unanswered probes last.
    """
    transport = getattr(connection, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in {socket.AF_INET, socket.AF_INET6}:
        return  # a Unix socket: the peer is on this host, and the kernel tells us when it goes
    window = _KEEPALIVE_IDLE + _KEEPALIVE_INTERVAL * _KEEPALIVE_COUNT
    limit = settings.db_client_timeout
    options = {
        "TCP_KEEPIDLE": _KEEPALIVE_IDLE,
        "TCP_KEEPINTVL": _KEEPALIVE_INTERVAL,
        "TCP_KEEPCNT": _KEEPALIVE_COUNT,
        "TCP_USER_TIMEOUT": int(max(window, limit or 0) * 1000),
    }
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in options.items():
        option = getattr(socket, name, None)  # not every platform has every option
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def server_settings(settings: Settings, application_name: str) -> dict[str, str]:
    return {
        "application_name": application_name,
        "statement_timeout": str(settings.db_statement_timeout_ms),
        # Interpret and render timestamps in UTC, and dates as YYYY-MM-DD, whatever the
        # server's defaults are.
        "TimeZone": "UTC",
        "DateStyle": "ISO",
    }
