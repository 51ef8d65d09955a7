"""Graceful shutdown of `crm serve`: SIGTERM stops accepting, drains in-flight requests, exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from crm.config import Settings
from tests.helpers import TokenFactory, assert_problem, customer_body
from tests.reliability.pgproxy import PgProxy
from tests.reliability.support import poll_until, wait_for_lock_waiters, wait_for_other_sessions_to_end

pytestmark = pytest.mark.slow

CRM = Path(sys.executable).with_name("crm")


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_ready(self, within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(base_url=self.url, timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"crm serve exited with {self.process.returncode}:\n{self.output()}")
                try:
                    if (await http.get("/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"crm serve not ready within {within} s:\n{self.output()}")

    async def wait_exit(self, within: float) -> int:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                return code
            await asyncio.sleep(0.05)
        raise AssertionError(f"crm serve still running {within} s after SIGTERM:\n{self.output()}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True


@contextmanager
def crm_serve(tmp_path: Path, database_url: str, settings: Settings, grace: int) -> Iterator[Server]:
    port = free_port()
    log = tmp_path / f"serve-{port}.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "JWT_SECRET": settings.jwt_secret or "",
        "RATE_LIMIT_PER_MINUTE": "0",
        "REDIS_URL": "",
        "CRM_DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "info",
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as out:
        # cwd: a directory without a `.env`, so the environment above is the whole configuration.
        # One worker: this is the drain of a serving process. With several, uvicorn's supervisor
        # keeps the listening socket open until every worker has drained (README, shutdown).
        process = subprocess.Popen(
            [str(CRM), "serve", "--port", str(port), "--grace", str(grace), "--workers", "1"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Server(process, port, log)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def create_customers(http: httpx.AsyncClient, headers: dict[str, str], n: int) -> list[uuid.UUID]:
    ids = []
    for _ in range(n):
        response = await http.post("/api/customers", json=customer_body(), headers=headers)
        assert response.status_code == 201, response.text
        ids.append(uuid.UUID(response.json()["id"]))
    return ids


async def test_sigterm_drains_in_flight_writes_and_exits_zero(
    tmp_path: Path, database_url: str, settings: Settings, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    headers = tokens.headers("manager")
    with crm_serve(tmp_path, database_url, settings, grace=10) as server:
        await server.wait_ready()
        async with httpx.AsyncClient(base_url=server.url, timeout=20.0) as http:
            ids = await create_customers(http, headers, 3)

            # Hold the rows, so the PUTs below are in flight (inside their transactions) at SIGTERM.
            lock = db.transaction()
            await lock.start()
            await db.execute("SELECT 1 FROM customers WHERE id = ANY($1::uuid[]) FOR UPDATE", ids)
            puts = [
                asyncio.create_task(
                    http.put(f"/api/customers/{cid}", json={"notes": f"in flight {i}"}, headers=headers)
                )
                for i, cid in enumerate(ids)
            ]
            try:
                await wait_for_lock_waiters(db, 3)
                sigterm = time.monotonic()
                server.process.send_signal(signal.SIGTERM)

                # Shutdown has begun: new connections are refused while the old ones drain.
                refusing = await poll_until(lambda: refuses_connections(server.port), within=2.0)
                assert refusing, "still accepting connections 2 s after SIGTERM"
                assert server.process.poll() is None
                assert not any(p.done() for p in puts)
                await asyncio.sleep(max(0.0, sigterm + 1.0 - time.monotonic()))
            finally:
                await lock.rollback()

            answers = await asyncio.wait_for(asyncio.gather(*puts), timeout=10)
            assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
            assert [a.json()["notes"] for a in answers] == ["in flight 0", "in flight 1", "in flight 2"]

        code = await server.wait_exit(within=max(0.5, sigterm + 10 - time.monotonic()))
        took = time.monotonic() - sigterm
        # Done draining, it did not sit out the rest of the grace period.
        assert took < 5.0, took

    rows = await db.fetch("SELECT id, notes, version FROM customers WHERE id = ANY($1::uuid[])", ids)
    assert sorted((r["notes"], r["version"]) for r in rows) == [(f"in flight {i}", 2) for i in range(3)]
    assert code == 0, server.output()


async def test_grace_period_bounds_shutdown(
    tmp_path: Path, database_url: str, settings: Settings, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    """A request held past the grace period is cut off; the process still exits, at about the grace period."""
    headers = tokens.headers("manager")
    with crm_serve(tmp_path, database_url, settings, grace=1) as server:
        await server.wait_ready()
        async with httpx.AsyncClient(base_url=server.url, timeout=20.0) as http:
            [customer_id] = await create_customers(http, headers, 1)
            lock = db.transaction()
            await lock.start()
            try:
                await db.execute("SELECT 1 FROM customers WHERE id = $1 FOR UPDATE", customer_id)
                put = asyncio.create_task(
                    http.put(f"/api/customers/{customer_id}", json={"notes": "too late"}, headers=headers)
                )
                await wait_for_lock_waiters(db, 1)
                sigterm = time.monotonic()
                server.process.send_signal(signal.SIGTERM)
                code = await server.wait_exit(within=8)
                took = time.monotonic() - sigterm
                outcome: Any
                try:
                    outcome = await asyncio.wait_for(put, timeout=5)
                except httpx.TransportError as exc:
                    outcome = exc
            finally:
                await lock.rollback()

    assert code == 0, server.output()
    assert 1.0 <= took < 4.0, took
    # The cut-off request's transaction never committed: the row is as it was, now that nothing holds it.
    await wait_for_other_sessions_to_end(db)
    row = await db.fetchrow("SELECT notes, version FROM customers WHERE id = $1", customer_id)
    assert tuple(row) == (None, 1)

    # It is never acknowledged: the client gets a 503 to retry, or (if the connection closes first) nothing.
    if isinstance(outcome, httpx.RemoteProtocolError):
        return
    assert isinstance(outcome, httpx.Response), outcome
    body = assert_problem(outcome, 503)
    assert outcome.headers["Retry-After"].isdigit(), body


async def test_a_write_cut_off_in_its_commit_is_never_reported_as_not_stored(
    tmp_path: Path, database_url: str, settings: Settings, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    """The grace period ends while a create's COMMIT is in flight (the proxy withholds the server's
    answer: the row is stored). The client must hear "outcome unknown", never "nothing was changed"."""
    headers = tokens.headers("manager")
    email = f"shutdown.{uuid.uuid4().hex}@example.com"
    body = customer_body(email=email, contacts=[{"first_name": "Olena", "last_name": "Koval"}])
    async with PgProxy.to(database_url) as proxy:
        with crm_serve(tmp_path, proxy.url(database_url), settings, grace=1) as server:
            await server.wait_ready()
            async with httpx.AsyncClient(base_url=server.url, timeout=20.0) as http:
                proxy.arm("HOLD_COMMIT")
                post = asyncio.create_task(http.post("/api/customers", json=body, headers=headers))
                await asyncio.wait_for(proxy.held.wait(), timeout=10)
                server.process.send_signal(signal.SIGTERM)
                code = await server.wait_exit(within=8)
                outcome: Any
                try:
                    outcome = await asyncio.wait_for(post, timeout=5)
                except httpx.TransportError as exc:
                    outcome = exc

    assert code == 0, server.output()
    assert await db.fetchval("SELECT count(*) FROM customers WHERE email = $1", email) == 1
    assert isinstance(outcome, httpx.Response), f"no answer: {outcome!r}\n{server.output()}"
    problem = assert_problem(outcome, 503)
    assert problem["type"] == "urn:crm:problem:outcome-unknown", problem
    assert "Idempotency-Key" in problem["detail"]
