"""`crm events tail`: the events arriving, one line each, from the real broker."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx

import crm
from crm.events.tail import tail
from tests.events.conftest import AMQP_URL, Broker
from tests.helpers import create_customer

CRM = str(Path(sys.executable).with_name("crm"))
# The command imports the same package as these tests (a worktree's, under PYTHONPATH=src).
SOURCE = str(Path(crm.__file__).resolve().parents[1])


async def test_tail_prints_each_event_as_it_arrives(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], broker: Broker
) -> None:
    lines: list[str] = []
    ready = asyncio.Event()
    tailing = asyncio.create_task(tail(AMQP_URL, broker.exchange, count=2, out=lines.append, ready=ready))
    await asyncio.wait_for(ready.wait(), 10)
    customer = await create_customer(client, admin)
    assert (await client.put(f"/api/customers/{customer['id']}", json={"notes": "x"}, headers=admin)).is_success
    assert await asyncio.wait_for(tailing, 15) == 2
    assert "crm.customer.created" in lines[0]
    assert "crm.customer.updated" in lines[1]
    for n, text in enumerate(lines, start=1):
        assert f"customer={customer['id']}" in text
        assert f"sequence={n} " in text
        assert f"subject={customer['id']}" in text


async def test_the_command_tails_the_configured_exchange(
    client: httpx.AsyncClient, admin: dict[str, str], broker: Broker, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": SOURCE,
        "EVENTS_AMQP_URL": AMQP_URL,
        "EVENTS_EXCHANGE": broker.exchange,
        "CRM_DATA_DIR": str(tmp_path),
    }
    process = await asyncio.create_subprocess_exec(
        CRM, "events", "tail", "--count", "1", "--key", "customer.*",
        env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        banner = await asyncio.wait_for(process.stderr.readline(), 30)
        assert broker.exchange.encode() in banner
        await asyncio.sleep(1.0)  # its queue is bound once it has connected
        customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    printed = out.decode().splitlines()
    assert len(printed) == 1
    assert "crm.customer.created" in printed[0]
    assert f"customer={customer['id']}" in printed[0]


async def test_the_command_needs_the_broker_url(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EVENTS_AMQP_URL"} | {
        "CRM_DATA_DIR": str(tmp_path),
        "PYTHONPATH": SOURCE,
    }
    process = await asyncio.create_subprocess_exec(
        CRM, "events", "tail", env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"EVENTS_AMQP_URL is unset" in err
