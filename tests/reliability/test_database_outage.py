"""PostgreSQL stops while requests are running, then comes back.

The test runs its own embedded server (whatever TEST_DATABASE_URL says), so stopping it
disturbs no other test.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from crm.config import Settings
from crm.migrate import upgrade_async
from tests.helpers import TokenFactory, assert_problem, customer_body
from tests.reliability.embedded import StoppableServer
from tests.reliability.support import app_client, poll_until, wait_for_lock_waiters

pytestmark = pytest.mark.slow  # starts and stops a PostgreSQL of its own

WORKERS = 4
FAST = 3.0  # seconds: no request may take longer, whether PostgreSQL is up, going, gone or coming back
RECOVERY = 20.0  # seconds the app gets to serve writes again once PostgreSQL is back


@dataclass(frozen=True)
class Outcome:
    began: str  # phase when the request was sent
    ended: str  # phase when its answer arrived
    email: str
    elapsed: float
    response: httpx.Response | None
    error: str | None = None

    @property
    def status(self) -> int | None:
        return self.response.status_code if self.response is not None else None


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[StoppableServer]:
    server = StoppableServer(tmp_path / "outage")
    server.start()
    try:
        yield server
    finally:
        # Always stop it, also when the test failed half-way through a stop or a start.
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            server.stop("immediate")
        if not (server.pgdata / "postmaster.pid").exists():  # never delete the files of a running server
            shutil.rmtree(server.data_dir, ignore_errors=True)


async def test_requests_fail_fast_during_outage_and_recover(
    postgres: StoppableServer, settings: Settings, tokens: TokenFactory
) -> None:
    await upgrade_async(postgres.url)
    headers = tokens.headers("manager")
    phase = "up"
    done = asyncio.Event()
    outcomes: list[Outcome] = []

    async def post(http: httpx.AsyncClient) -> Outcome:
        body = customer_body(email=f"outage.{uuid.uuid4().hex}@example.com")
        began, started = phase, time.perf_counter()
        try:
            response = await asyncio.wait_for(http.post("/api/customers", json=body, headers=headers), timeout=10)
        except TimeoutError:
            return Outcome(began, phase, body["email"], time.perf_counter() - started, None, "no answer in 10 s")
        except Exception as exc:  # noqa: BLE001 - an exception escaping the app is a finding, not a crash of the test
            return Outcome(began, phase, body["email"], time.perf_counter() - started, None, repr(exc))
        return Outcome(began, phase, body["email"], time.perf_counter() - started, response)

    async def writer(http: httpx.AsyncClient) -> None:
        while not done.is_set():
            outcomes.append(await post(http))
            await asyncio.sleep(0.01)

    def recovered() -> bool:
        return any(o.began == "back" and o.status == 201 for o in outcomes)

    async with app_client(settings, postgres.url, db_pool_timeout=2.0) as (_, http):
        assert (await http.get("/ready")).status_code == 200
        # Requests that are inside a transaction when PostgreSQL goes: PUTs waiting on a row lock.
        locked = (await http.post("/api/customers", json=customer_body(), headers=headers)).json()
        holder = await asyncpg.connect(postgres.url)
        await holder.execute("BEGIN")
        await holder.execute("SELECT 1 FROM customers WHERE id = $1 FOR UPDATE", uuid.UUID(locked["id"]))
        blocked = [
            asyncio.create_task(
                http.put(f"/api/customers/{locked['id']}", json={"notes": f"lost {i}"}, headers=headers)
            )
            for i in range(3)
        ]
        writers = [asyncio.create_task(writer(http)) for _ in range(WORKERS)]
        try:
            await wait_for_lock_waiters(holder, 3)
            await asyncio.sleep(0.5)

            phase = "stopping"
            stop_began = time.perf_counter()
            await asyncio.to_thread(postgres.stop, "fast")
            phase = "down"
            # The server terminated their sessions: they are answered at once, not left hanging.
            interrupted = await asyncio.wait_for(asyncio.gather(*blocked), timeout=FAST)
            assert time.perf_counter() - stop_began < FAST
            for response in interrupted:
                assert_problem(response, 503)
                assert response.headers["Retry-After"] == "2"
            await asyncio.sleep(0.5)
            started = time.perf_counter()
            ready = await asyncio.wait_for(http.get("/ready"), timeout=FAST)
            assert time.perf_counter() - started < FAST
            assert ready.status_code == 503
            assert assert_problem(ready, 503)["type"] == "urn:crm:problem:not-ready"
            health = await asyncio.wait_for(http.get("/health"), timeout=FAST)
            assert health.status_code == 200
            assert health.json() == {"status": "ok"}
            # The hot read path (driver connection, no ORM) fails the same clean way.
            read = await asyncio.wait_for(http.get(f"/api/customers/{locked['id']}", headers=headers), timeout=FAST)
            assert_problem(read, 503)
            await asyncio.sleep(0.5)

            phase = "starting"
            await asyncio.to_thread(postgres.start)
            phase = "back"
            assert await poll_until(recovered, RECOVERY), f"no write succeeded {RECOVERY} s after PostgreSQL came back"
            # The same app object, never rebuilt, is ready again.
            assert (await http.get("/ready")).status_code == 200
        finally:
            done.set()
            holder.terminate()
            await asyncio.wait_for(asyncio.gather(*writers), timeout=15)
            await asyncio.wait_for(asyncio.gather(*blocked, return_exceptions=True), timeout=15)

    by_phase = {(o.began, o.ended) for o in outcomes}
    assert ("up", "up") in by_phase
    assert ("down", "down") in by_phase

    # Never a 500, never a hang: every answer is a 201 or a 503 problem with Retry-After, and quick.
    assert [o for o in outcomes if o.error is not None] == []
    assert {o.status for o in outcomes} <= {201, 503}, sorted({o.status for o in outcomes if o.status})
    slow = [round(o.elapsed, 2) for o in outcomes if o.elapsed >= FAST]
    assert slow == [], f"{len(slow)} requests took >= {FAST} s"
    for o in outcomes:
        assert o.response is not None
        if o.status == 503:
            body = assert_problem(o.response, 503)
            # A create in flight when the server went may have sent its INSERT or COMMIT: its
            # outcome is unknown, and it says so. Anything sent later never wrote anything.
            unknown = {"urn:crm:problem:outcome-unknown"} if o.began in {"up", "stopping"} else set()
            assert body["type"] in {"urn:crm:problem:database-unavailable", *unknown}, (o.began, body)
            assert o.response.headers["Retry-After"] == "2"

    # Before the stop everything worked; while PostgreSQL was gone nothing did (and said so).
    assert {o.status for o in outcomes if (o.began, o.ended) == ("up", "up")} == {201}
    down = [o for o in outcomes if (o.began, o.ended) == ("down", "down")]
    assert len(down) >= 10
    assert {o.status for o in down} == {503}

    # Every acknowledged write is stored; nothing is stored that was not sent before the stop.
    acknowledged = {o.email: o.response.json()["id"] for o in outcomes if o.status == 201 and o.response}
    conn = await asyncpg.connect(postgres.url)
    try:
        rows = await conn.fetch("SELECT id::text, email FROM customers WHERE email LIKE 'outage.%'")
        # The interrupted updates left no trace.
        row = await conn.fetchrow("SELECT version, notes FROM customers WHERE id = $1", uuid.UUID(locked["id"]))
        assert tuple(row) == (1, None)
    finally:
        await conn.close()
    stored = {r["email"]: r["id"] for r in rows}
    missing = set(acknowledged) - set(stored)
    assert missing == set(), f"{len(missing)} acknowledged writes are gone"
    assert all(stored[email] == customer_id for email, customer_id in acknowledged.items())
    # A write whose COMMIT was in flight when the server went down may be stored yet answered 503
    # outcome-unknown (retry with an Idempotency-Key). Only requests sent before the stop can be such.
    in_flight_at_stop = {
        o.email
        for o in outcomes
        if o.response is not None
        and o.status == 503
        and o.began in {"up", "stopping"}
        and o.response.json()["type"] == "urn:crm:problem:outcome-unknown"
    }
    assert set(stored) - set(acknowledged) <= in_flight_at_stop
