"""`make bench`'s order events case: N Order Service events published to a real RabbitMQ queue,
then consumed by the service's own consumer (crm.orders.consumer, default settings) into the
loaded database; reports events consumed per second and whether the projection is exact after.

The events are new orders of customers drawn from the database: 1-4 versions each, some moving
to another customer, some deleted, 10% sent twice, all shuffled (duplicates and reordering).
Exact means: every bench order's stored state is its latest version, and every touched
customer's figures equal a direct sum over order_projections. Afterwards the bench's orders are
deleted and the touched customers' figures rows put back as they were, so the loaded data set
stays what `crm demo-data` made.

The consumer runs in this process, alone (in the service it shares a worker with requests).
Standalone: python bench/order_events.py --database postgresql://...  [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src")]

from crm.config import Settings  # noqa: E402 - after the path above
from crm.db.transaction import create_engine, create_sessionmaker  # noqa: E402
from crm.orders.consumer import OrderEventsConsumer, dead_letter_names  # noqa: E402

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
T0 = datetime(2026, 11, 2, tzinfo=UTC)
STATUSES = ("new", "processing", "shipped", "delivered", "delivered", "delivered", "cancelled", "returned")


@dataclass
class Result:
    events: int
    orders: int
    customers: int
    seconds: float
    per_second: float
    batches: int
    dead_lettered: int
    wrong_orders: int
    wrong_figures: int

    @property
    def exact(self) -> bool:
        return self.wrong_orders == 0 and self.wrong_figures == 0 and self.dead_lettered == 0

    def describe(self) -> str:
        return (
            f"{self.per_second:,.0f} events/s ({self.events:,} events of {self.orders:,} orders, "
            f"{self.customers:,} customers, in {self.seconds:.1f} s, {self.batches:,} transactions); "
            f"projection {'exact' if self.exact else 'NOT exact'} "
            f"({self.wrong_orders} orders and {self.wrong_figures} figures wrong, {self.dead_lettered} dead-lettered)"
        )


def _event(order: uuid.UUID, customer: uuid.UUID, version: int, status: str, amount: str, kind: str) -> dict[str, Any]:
    at = (T0 + timedelta(seconds=version)).isoformat().replace("+00:00", "Z")
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "order-service",
        "type": f"orders.order.{kind}",
        "subject": str(order),
        "time": at,
        "datacontenttype": "application/json",
        "data": {
            "version": version,
            "order": {
                "id": str(order),
                "customer_id": str(customer),
                "order_number": f"ORD-{order.int % 10**8:08d}",
                "status": status,
                "total_amount": amount,
                "created_at": T0.isoformat().replace("+00:00", "Z"),
                "updated_at": at,
            },
        },
    }


def generate(customers: list[uuid.UUID], events: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """About `events` events (shuffled, with duplicates) and each order's latest event."""
    rng = random.Random(seed)
    unique: list[dict[str, Any]] = []
    latest: dict[str, Any] = {}
    while len(unique) < events * 10 // 11:
        order, customer = uuid.uuid4(), rng.choice(customers)
        for version in range(1, rng.randint(1, 4) + 1):
            if rng.random() < 0.05:
                customer = rng.choice(customers)  # the order moves to another customer
            kind = "deleted" if version > 1 and rng.random() < 0.03 else "updated"
            amount = f"{rng.randrange(100, 500_000) / 100:.2f}"
            event = _event(order, customer, version, rng.choice(STATUSES), amount, kind)
            unique.append(event)
            latest[str(order)] = event
            if kind == "deleted":
                break
    sent = unique + rng.sample(unique, events - len(unique))
    rng.shuffle(sent)
    return sent, latest


async def _declare(channel: aio_pika.abc.AbstractChannel, exchange: str, queue: str) -> None:
    """The queue as the consumer declares it, so the events wait in it before the clock starts."""
    topic = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    dead = dead_letter_names(queue)
    dead_exchange = await channel.declare_exchange(dead, aio_pika.ExchangeType.FANOUT, durable=True)
    dead_queue = await channel.declare_queue(dead, durable=True)
    await dead_queue.bind(dead_exchange)
    main = await channel.declare_queue(queue, durable=True, arguments={"x-dead-letter-exchange": dead})
    for key in ("order.created", "order.updated", "order.deleted"):
        await main.bind(topic, key)


async def _publish(channel: aio_pika.abc.AbstractChannel, exchange: str, events: list[dict[str, Any]]) -> None:
    topic = await channel.get_exchange(exchange)
    for first in range(0, len(events), 500):
        await asyncio.gather(
            *(
                topic.publish(
                    aio_pika.Message(json.dumps(e).encode(), message_id=e["id"], delivery_mode=2),
                    routing_key="order.deleted" if e["type"].endswith("deleted") else "order.updated",
                )
                for e in events[first : first + 500]
            )
        )


_DIRECT = """
    SELECT c.id, count(o.order_id) AS n, coalesce(sum(o.total_amount), 0) AS spent
    FROM unnest($1::uuid[]) AS c(id)
    LEFT JOIN order_projections o
        ON o.customer_id = c.id AND NOT o.deleted AND o.status NOT IN ('cancelled', 'returned')
    GROUP BY c.id
"""


async def _check(conn: asyncpg.Connection[Any], latest: dict[str, Any], touched: list[uuid.UUID]) -> tuple[int, int]:
    rows = {
        str(r["order_id"]): r
        for r in await conn.fetch(
            "SELECT order_id, customer_id, status, total_amount, version, deleted FROM order_projections"
            " WHERE order_id = ANY($1::uuid[])",
            list(latest),
        )
    }
    wrong_orders = 0
    for order_id, event in latest.items():
        row, order = rows.get(order_id), event["data"]["order"]
        if (
            row is None
            or row["version"] != event["data"]["version"]
            or str(row["customer_id"]) != order["customer_id"]
            or row["deleted"] != event["type"].endswith("deleted")
            or f"{row['total_amount']:.2f}" != order["total_amount"]
        ):
            wrong_orders += 1
    direct = {r["id"]: (r["n"], r["spent"]) for r in await conn.fetch(_DIRECT, touched)}
    stored = {
        r["customer_id"]: (r["total_orders"], r["total_spent"])
        for r in await conn.fetch(
            "SELECT customer_id, total_orders, total_spent FROM customer_order_figures"
            " WHERE customer_id = ANY($1::uuid[])",
            touched,
        )
    }
    wrong_figures = sum(1 for c in touched if stored.get(c) != direct[c])
    return wrong_orders, wrong_figures


async def measure(database_url: str, amqp_url: str = AMQP_URL, events: int = 20_000, seed: int = 1) -> Result:
    conn = await asyncpg.connect(database_url)
    name = f"bench-orders-{uuid.uuid4().hex[:10]}"
    exchange, queue = f"{name}.events", name
    broker = await aio_pika.connect(amqp_url)
    channel = await broker.channel()
    settings = Settings(jwt_secret="bench-" + "x" * 40)
    engine = create_engine(settings, database_url)
    try:
        customers = [r[0] for r in await conn.fetch("SELECT id FROM customers TABLESAMPLE SYSTEM (2) LIMIT 20000")]
        sent, latest = generate(customers, events, seed)
        touched = sorted(
            {uuid.UUID(e["data"]["order"]["customer_id"]) for e in sent},
        )
        saved = await conn.fetch("SELECT * FROM customer_order_figures WHERE customer_id = ANY($1::uuid[])", touched)
        await _declare(channel, exchange, queue)
        await _publish(channel, exchange, sent)
        consumer = OrderEventsConsumer(
            create_sessionmaker(engine),
            amqp_url,
            exchange=exchange,
            queue=queue,
            prefetch=settings.order_events_prefetch,
        )
        started = time.perf_counter()
        consumer.start()
        try:
            while consumer.applied + consumer.dead_lettered < len(sent):
                await asyncio.sleep(0.01)
                if time.perf_counter() - started > 600:
                    raise TimeoutError(f"{consumer.applied} of {len(sent)} consumed in 10 minutes")
            seconds = time.perf_counter() - started
        finally:
            await consumer.stop()
        wrong_orders, wrong_figures = await _check(conn, latest, touched)
        return Result(
            events=len(sent),
            orders=len(latest),
            customers=len(touched),
            seconds=seconds,
            per_second=len(sent) / seconds,
            batches=consumer.batches,
            dead_lettered=consumer.dead_lettered,
            wrong_orders=wrong_orders,
            wrong_figures=wrong_figures,
        )
    finally:
        await engine.dispose()
        if channel.is_closed:  # a failure closed it: the queues still go
            channel = await broker.channel()
        for q in (queue, dead_letter_names(queue)):
            await channel.queue_delete(q)
        for x in (exchange, dead_letter_names(queue)):
            await channel.exchange_delete(x)
        await broker.close()
        # The loaded data set as it was: the bench's orders out, the figures rows back.
        if "latest" in locals():
            async with conn.transaction():
                await conn.execute("DELETE FROM order_projections WHERE order_id = ANY($1::uuid[])", list(latest))
                for row in saved:
                    await conn.execute(
                        "UPDATE customer_order_figures SET total_orders = $2, total_spent = $3,"
                        " first_order_date = $4, last_order_date = $5, orders_synced_at = $6 WHERE customer_id = $1",
                        *row.values(),
                    )
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True, help="a loaded database's URL (postgresql://...)")
    parser.add_argument("--amqp", default=AMQP_URL)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    result = asyncio.run(measure(args.database, args.amqp, args.events))
    print(result.describe())
    print(json.dumps({**asdict(result), "exact": result.exact}))
    return 0 if result.exact else 1


if __name__ == "__main__":
    sys.exit(main())
