"""RabbitMQ stopped under a write load and started again: writes succeed, nothing is lost, order holds.

The test stops the machine's RabbitMQ application (`rabbitmqctl stop_app`) and always starts it
again (`start_app`, in a `finally`), then checks that port 5672 answers. Other tests using
RabbitMQ at that moment see a broker outage of a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest

from tests.events.conftest import AMQP_URL, Broker, applied
from tests.helpers import create_customer

RABBITMQCTL = shutil.which("rabbitmqctl")


async def _rabbitmqctl(*args: str) -> None:
    assert RABBITMQCTL is not None
    process = await asyncio.create_subprocess_exec(
        RABBITMQCTL, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, output.decode(errors="replace")


async def _answers(within: float = 60.0) -> None:
    """Wait until RabbitMQ accepts an AMQP connection again."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            connection = await aio_pika.connect(AMQP_URL, timeout=5)
        except Exception:  # noqa: BLE001 - not up yet
            assert asyncio.get_running_loop().time() < deadline, "RabbitMQ does not answer on 5672"
            await asyncio.sleep(0.5)
        else:
            await connection.close()
            return


@pytest.mark.slow
@pytest.mark.skipif(RABBITMQCTL is None, reason="rabbitmqctl is not installed")
async def test_rabbitmq_stopped_under_writes_then_started_loses_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], broker: Broker
) -> None:
    queue = await broker.durable_queue()
    customers = [await create_customer(client, admin) for _ in range(4)]
    failures: list[str] = []
    writing = True

    async def writer(customer: dict[str, Any]) -> None:
        n = 0
        while writing:
            response = await client.put(f"/api/customers/{customer['id']}", json={"notes": f"n{n}"}, headers=admin)
            if response.status_code != 200:
                failures.append(response.text)
            n += 1
            await asyncio.sleep(0.02)

    writers = [asyncio.create_task(writer(customer)) for customer in customers]
    try:
        await asyncio.sleep(0.5)
        await _rabbitmqctl("stop_app")
        try:
            await asyncio.sleep(1.5)
            # Writes go on; events wait in the outbox and the status says so.
            status = (await client.get("/api/events/status", headers=admin)).json()
            assert status["backlog"] > 0
            assert (await client.get("/ready")).status_code == 200
        finally:
            await _rabbitmqctl("start_app")
        await asyncio.sleep(1.0)
    finally:
        writing = False
        await asyncio.gather(*writers)
        await _answers()
    assert failures == []

    deadline = asyncio.get_running_loop().time() + 60
    while await db.fetchval("SELECT count(*) FROM events WHERE published_at IS NULL"):
        assert asyncio.get_running_loop().time() < deadline, "the relay did not catch up"
        await asyncio.sleep(0.1)
    messages = await broker.drain(queue)
    bodies = [json.loads(m.body) for m in messages]
    counts = {str(r["customer_id"]): r["last"] for r in await db.fetch("SELECT * FROM event_sequences")}
    # Every event arrived at least once, and a consumer applying each customer's events in
    # sequence order (dropping repeats) gets them all.
    assert {b["id"] for b in bodies} == {str(r["id"]) for r in await db.fetch("SELECT id FROM events")}
    assert applied(bodies) == {customer: list(range(1, n + 1)) for customer, n in counts.items()}
    await _answers(5)
