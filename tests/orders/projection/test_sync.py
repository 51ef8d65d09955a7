"""`crm orders sync` against the fake Order Service: exact figures, idempotent, safe beside live events."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import asyncpg
import httpx

from crm.config import Settings
from crm.orders.client import OrderServiceClient
from crm.orders.fake_server import EventPublisher, FakeOrderService, create_fake_app
from crm.orders.sync import sync_orders
from tests.orders.projection.amqp import Broker
from tests.orders.projection.helpers import expected_figures, nonzero, sessionmaker_for, stored_figures
from tests.orders.projection.test_consumer import consuming, until
from tests.orders.stub import start_server

HEADERS = {"Authorization": "Bearer test"}


@contextmanager
def fake_service(customers: int, orders: int) -> Iterator[tuple[FakeOrderService, str]]:
    fake = FakeOrderService(orders)
    with start_server(create_fake_app(orders, service=fake)) as url:
        for _ in range(customers):
            fake.ensure(uuid.uuid4())
        yield fake, url


async def test_sync_brings_every_figure_up_to_date_and_a_rerun_changes_nothing(
    settings: Settings, database_url: str, db: asyncpg.Connection[Any]
) -> None:
    with fake_service(customers=5, orders=130) as (fake, url):
        async with sessionmaker_for(settings, database_url) as maker, httpx.AsyncClient() as http:
            client = OrderServiceClient(http, url, 5.0)
            seen: list[tuple[int, int]] = []
            first = await sync_orders(maker, client, HEADERS, progress=lambda d, t: seen.append((d, t)))
            assert first.seen == first.changed == 650
            assert first.pages == 7
            assert seen[-1] == (650, 650)
            assert nonzero(await stored_figures(db)) == expected_figures(fake.orders.values())
            before = await db.fetch("SELECT * FROM customer_order_figures ORDER BY customer_id")
            again = await sync_orders(maker, client, HEADERS)
            assert (again.seen, again.changed) == (650, 0)
            assert await db.fetch("SELECT * FROM customer_order_figures ORDER BY customer_id") == before
            # A change in the Order Service (no event consumed here): a sync since then picks it up.
            changed = [fake.change_one() for _ in range(20)]
            since = min(o["updated_at"] for o in changed if o)
            partial = await sync_orders(maker, client, HEADERS, since=datetime.fromisoformat(since))
            assert partial.seen < 650
            assert nonzero(await stored_figures(db)) == nonzero(expected_figures(fake.orders.values()))


async def test_a_sync_racing_live_events_ends_exact(
    settings: Settings, database_url: str, broker: Broker, db: asyncpg.Connection[Any]
) -> None:
    fake = FakeOrderService(60)
    publisher = EventPublisher(broker.url, broker.exchange)
    publisher.attach()
    fake.sinks.append(publisher.sink)
    publishing = asyncio.create_task(publisher.run())
    try:
        with start_server(create_fake_app(60, service=fake)) as url:
            async with (
                consuming(settings, database_url, broker, prefetch=8) as consumer,
                sessionmaker_for(settings, database_url) as maker,
                httpx.AsyncClient() as http,
            ):
                for _ in range(4):
                    fake.ensure(uuid.uuid4())

                async def change() -> None:
                    for _ in range(300):
                        fake.change_one()
                        await asyncio.sleep(0.002)

                client = OrderServiceClient(http, url, 5.0)
                await asyncio.gather(change(), sync_orders(maker, client, HEADERS), sync_orders(maker, client, HEADERS))
                await asyncio.wait_for(publisher.idle(), 30)

                async def drained() -> bool:
                    return consumer.applied >= publisher.published

                await until(drained, within=60)
                assert publisher.published == 4 * 60 + 300
                assert consumer.dead_lettered == 0
            assert nonzero(await stored_figures(db)) == nonzero(expected_figures(fake.orders.values()))
    finally:
        publishing.cancel()
        await asyncio.gather(publishing, return_exceptions=True)


def test_the_command_syncs_with_the_service_token(settings: Settings, database_url: str) -> None:
    with fake_service(customers=2, orders=30) as (fake, url):
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "ORDER_SERVICE_URL": url,
            "ORDER_SERVICE_TOKEN": "dev-token",
            "CRM_DATA_DIR": str(settings.data_dir),
        }
        crm = [sys.executable, "-m", "crm.cli", "orders", "sync"]
        first = subprocess.run(crm, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert first.returncode == 0, first.stderr
        assert "synced 60 orders in 1 pages: 60 changed" in first.stdout
        again = subprocess.run(crm, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert "synced 60 orders in 1 pages: 0 changed" in again.stdout
        no_token = subprocess.run(
            crm, env={**env, "ORDER_SERVICE_TOKEN": ""}, capture_output=True, text=True, timeout=120, check=False
        )
        assert no_token.returncode == 2
        assert "ORDER_SERVICE_TOKEN" in no_token.stderr
        bad_since = subprocess.run(
            [*crm, "--since", "yesterday"], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert bad_since.returncode == 2
        assert "--since" in bad_since.stderr
    del fake
