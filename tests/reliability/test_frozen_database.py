"""A database that stops answering while its connections stay open (a paused VM, a black-holed
network) costs a request at most the client-side limit, then a 503; the service recovers.

The proxy (tests/reliability/pgproxy.py) stops forwarding in both directions and keeps every
socket open, which neither a stopped server nor pg_terminate_backend can imitate: those close
the connections, and the driver notices at once.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import pytest

from crm.config import Settings
from crm.db.reads import create_read_pool
from crm.db.transaction import create_engine
from tests.helpers import TokenFactory, assert_problem, customer_body
from tests.reliability.pgproxy import PgProxy
from tests.reliability.support import app_client

STATEMENT_TIMEOUT_MS = 1_000
MARGIN_MS = 500
LIMIT = (STATEMENT_TIMEOUT_MS + MARGIN_MS) / 1000
# Generous for a shared, noisy machine; without a client-side limit these requests never end.
BOUND = 3 * LIMIT
RECOVERY = 15.0


async def timed(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await http.request(method, url, timeout=30, **kwargs)
    return response, time.perf_counter() - started


@pytest.mark.slow
async def test_a_frozen_database_costs_a_request_at_most_the_limit_then_503(
    database_url: str, settings: Settings, tokens: TokenFactory
) -> None:
    headers = tokens.headers("manager")
    overrides = {
        "db_statement_timeout_ms": STATEMENT_TIMEOUT_MS,
        "db_client_timeout_margin_ms": MARGIN_MS,
        # Waiting for a pooled connection is bounded the same way.
        "db_pool_timeout": LIMIT,
    }
    async with (
        PgProxy.to(database_url) as proxy,
        app_client(settings, proxy.url(database_url), **overrides) as (app, http),
    ):
        assert app.state.settings.db_client_timeout == LIMIT
        body = customer_body(contacts=[{"first_name": "Olena", "last_name": "Koval"}])
        created = await http.post("/api/customers", json=body, headers=headers)
        assert created.status_code == 201, created.text
        customer_id = created.json()["id"]

        def requests() -> list[tuple[str, str, dict[str, Any]]]:
            return [
                ("GET", f"/api/customers/{customer_id}", {}),  # the read pool
                ("GET", "/api/customers?status=active", {}),  # a list
                ("GET", f"/api/interactions/statistics?customerId={customer_id}", {}),  # a Core connection
                ("GET", "/api/contacts/search?query=Olena", {}),  # the ORM session
                (
                    "POST",
                    "/api/customers",
                    {"json": customer_body(contacts=[{"first_name": "Taras", "last_name": "Bondar"}])},
                ),
                ("PUT", f"/api/customers/{customer_id}", {"json": {"notes": "frozen"}}),
            ]

        for method, url, kwargs in requests():  # every path has a pooled connection before the freeze
            response, _ = await timed(http, method, url, headers=headers, **kwargs)
            assert response.status_code in {200, 201}, (method, url, response.text)

        proxy.freeze()
        slow: list[tuple[str, str, float]] = []
        try:
            for method, url, kwargs in requests():
                response, elapsed = await timed(http, method, url, headers=headers, **kwargs)
                problem = assert_problem(response, 503)
                assert response.headers["Retry-After"].isdigit()
                if method == "GET":
                    assert problem["type"] == "urn:crm:problem:database-unavailable", (url, problem)
                else:
                    # The write statement was handed to the driver before it waited: whether it
                    # arrived cannot be known, so the write is never reported as "nothing changed".
                    assert problem["type"] in {
                        "urn:crm:problem:database-unavailable",
                        "urn:crm:problem:outcome-unknown",
                    }, (url, problem)
                print(f"frozen: {method} {url.split('?')[0]} -> {problem['type']} in {elapsed:.2f} s")
                if elapsed >= BOUND:
                    slow.append((method, url, round(elapsed, 2)))
        finally:
            proxy.thaw()
        assert slow == [], f"requests over {BOUND} s while the database was frozen"

        # Answering again: every kind of request works once the network forwards again.
        deadline = time.monotonic() + RECOVERY
        pending = requests()
        while pending and time.monotonic() < deadline:
            method, url, kwargs = pending[0]
            response, _ = await timed(http, method, url, headers=headers, **kwargs)
            if response.status_code in {200, 201}:
                pending.pop(0)
        assert pending == [], f"not recovered within {RECOVERY} s: {pending[0][:2]}"


async def test_every_connection_detects_a_dead_peer(database_url: str, settings: Settings) -> None:
    """TCP keepalives and TCP_USER_TIMEOUT on the sockets of both pools (asyncpg has no option
    for either): a pooled connection to a server that vanished is closed by the kernel."""
    async with PgProxy.to(database_url) as proxy:  # TCP, whatever the test server listens on
        url = proxy.url(database_url)
        engine = create_engine(settings, url)
        pool = await create_read_pool(settings, url)
        try:
            async with engine.connect() as connection:
                driver = (await connection.get_raw_connection()).driver_connection
                assert driver is not None
                engine_socket = driver._transport.get_extra_info("socket")
                async with pool.acquire() as read:
                    await read.fetchval("SELECT 1")
                    read_socket = read._con._transport.get_extra_info("socket")
                    for sock in (engine_socket, read_socket):
                        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
                        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) <= 10
                        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) >= 1
                        user_timeout = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
                        assert user_timeout >= settings.db_statement_timeout_ms
        finally:
            await pool.close()
            await engine.dispose()
