"""`crm fake-order-service`: a stand-in Order Service for development.

Serves deterministic orders for any customer id (the id seeds the generator), in the
documented format, honouring page/limit/status/sortBy/sortOrder; without `customerId`, the
orders of every customer it has seen. With `--publish-events AMQP_URL` it also publishes
what it serves as the Order Service's order events, and changes an order now and then. It
checks nothing: it is for seeing the CRM's order views without the real service, never for
production.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aio_pika
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crm.broker import supervise
from crm.orders.schemas import OrderStatus

_CITIES = ["Kyiv", "Lviv", "Odesa", "Kharkiv", "Dnipro", "London", "Manchester"]
_STATUS_WEIGHTS = [
    (OrderStatus.delivered, 60),
    (OrderStatus.shipped, 10),
    (OrderStatus.processing, 8),
    (OrderStatus.new, 8),
    (OrderStatus.cancelled, 10),
    (OrderStatus.returned, 4),
]
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def fake_orders(customer_id: uuid.UUID, count: int) -> list[dict[str, Any]]:
    rng = random.Random(customer_id.int)  # noqa: S311 - deterministic fake data
    statuses = [s for s, _ in _STATUS_WEIGHTS]
    weights = [w for _, w in _STATUS_WEIGHTS]
    orders = []
    for n in range(count):
        created = _EPOCH + timedelta(minutes=rng.randrange(0, 60 * 24 * 365 * 2))
        items: list[dict[str, Any]] = []
        for _ in range(rng.randint(1, 4)):
            quantity = rng.randint(1, 5)
            unit = Decimal(rng.randrange(199, 99_999)) / 100
            items.append(
                {
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "product_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "quantity": quantity,
                    "unit_price": f"{unit:.2f}",
                    "total_price": f"{unit * quantity:.2f}",
                }
            )
        total = sum((Decimal(i["total_price"]) for i in items), Decimal(0))
        orders.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "customer_id": str(customer_id),
                "order_number": f"ORD-{customer_id.int % 10_000:04d}{n:04d}",
                "status": rng.choices(statuses, weights)[0].value,
                "total_amount": f"{total:.2f}",
                "shipping_address": f"{rng.randint(1, 200)} Main St",
                "shipping_city": rng.choice(_CITIES),
                "shipping_postal_code": f"{rng.randint(1000, 99999)}",
                "shipping_country": "UA",
                "shipping_method": rng.choice(["courier", "pickup", "post"]),
                "payment_method": rng.choice(["card", "invoice", "cash"]),
                "notes": None,
                "created_at": created.isoformat().replace("+00:00", "Z"),
                "updated_at": created.isoformat().replace("+00:00", "Z"),
                "items": items,
            }
        )
    return orders


_SORTABLE = frozenset({"created_at", "updated_at", "order_number", "status", "total_amount"})
# A changing order moves along this path (then stays delivered, or is returned).
_NEXT_STATUS = {
    "new": ["processing", "cancelled"],
    "processing": ["shipped", "cancelled"],
    "shipped": ["delivered"],
    "delivered": ["returned", "delivered"],
    "cancelled": ["new"],
    "returned": ["delivered"],
}

EventSink = Callable[[dict[str, Any], str], None]


def _wire_time(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeOrderService:
    """The fake's orders: generated per customer on first sight, then kept (and changed) in memory.

    The customers it knows are the ones given at start and every one it was asked about; the
    list without `customerId` covers them all. Thread-safe: the server and the event publisher
    may run on different threads (the tests run the server in one of its own).
    """

    def __init__(self, orders_per_customer: int, customers: Iterable[uuid.UUID] = ()) -> None:
        self.orders_per_customer = orders_per_customer
        self.orders: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, int] = {}
        self._by_customer: dict[uuid.UUID, list[str]] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self._cache: dict[tuple[Any, ...], tuple[dict[str, Any], ...]] = {}
        self.sinks: list[EventSink] = []
        self._rng = random.Random(0)  # noqa: S311 - fake data
        for customer in customers:
            self.ensure(customer)

    def ensure(self, customer_id: uuid.UUID) -> None:
        with self._lock:
            if customer_id in self._by_customer:
                return
            made = fake_orders(customer_id, self.orders_per_customer)
            self._by_customer[customer_id] = [o["id"] for o in made]
            for order in made:
                self.orders[order["id"]] = order
                self.versions[order["id"]] = 1
            self._generation += 1
        for order in made:
            self._emit(order, 1, "created")

    def change_one(self) -> dict[str, Any] | None:
        """Move one random order to its next status (a new version); the changed order, if any."""
        with self._lock:
            if not self.orders:
                return None
            order_id = self._rng.choice(list(self.orders))
            order = dict(self.orders[order_id])
            order["status"] = self._rng.choice(_NEXT_STATUS[order["status"]])
            order["updated_at"] = _wire_time(datetime.now(UTC))
            self.orders[order_id] = order
            self.versions[order_id] += 1
            version = self.versions[order_id]
            self._generation += 1
        self._emit(order, version, "updated")
        return order

    def _emit(self, order: dict[str, Any], version: int, kind: str) -> None:
        if not self.sinks:
            return
        event = order_event(order, version, kind)
        for sink in self.sinks:
            sink(event, f"order.{kind}")

    def listing(
        self, customer_id: uuid.UUID | None, status: str | None, sort_by: str, descending: bool
    ) -> tuple[dict[str, Any], ...]:
        with self._lock:
            key = (self._generation, customer_id, status, sort_by, descending)
            if (cached := self._cache.get(key)) is not None:
                return cached
            ids = self._by_customer.get(customer_id, []) if customer_id else list(self.orders)
            orders = [self.orders[i] for i in ids]
            if status:
                orders = [o for o in orders if o["status"] == status]
            if sort_by in _SORTABLE:
                key_of = (
                    (lambda o: Decimal(str(o[sort_by]))) if sort_by == "total_amount" else (lambda o: str(o[sort_by]))
                )
                # Ties in a stable order, so that pages never overlap.
                orders.sort(key=lambda o: (key_of(o), o["id"]), reverse=descending)
            result = tuple(orders)
            if len(self._cache) > 16:
                self._cache.clear()
            self._cache[key] = result
            return result


def order_event(order: dict[str, Any], version: int, kind: str) -> dict[str, Any]:
    """An event of the contract ("Order events" in the system description) for one order state."""
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "order-service",
        "type": f"orders.order.{kind}",
        "subject": order["id"],
        "time": _wire_time(datetime.now(UTC)),
        "datacontenttype": "application/json",
        "data": {
            "version": version,
            "order": {
                k: order[k]
                for k in ("id", "customer_id", "order_number", "status", "total_amount", "created_at", "updated_at")
            },
        },
    }


class EventPublisher:
    """Publishes the fake's events to the contract's exchange, in the order they happened, confirmed.

    `sink` may be called from any thread; `run` (in the publisher's own loop) keeps the connection
    with crm.broker.supervise and retries an event until the broker confirmed it.
    """

    def __init__(self, url: str, exchange: str = "orders.events") -> None:
        self.url = url
        self.exchange_name = exchange
        self.published = 0
        self._pending: asyncio.Queue[tuple[dict[str, Any], str]] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None
        self._ready = asyncio.Event()

    def sink(self, event: dict[str, Any], routing_key: str) -> None:
        if self._loop is None:
            raise RuntimeError("the publisher is not running")
        self._loop.call_soon_threadsafe(self._pending.put_nowait, (event, routing_key))

    def attach(self) -> None:
        """Call in the loop that will `run` the publisher, before events are emitted."""
        self._loop = asyncio.get_running_loop()

    async def idle(self) -> None:
        """Wait until every event emitted so far is confirmed."""
        await self._pending.join()

    async def _session(self, connection: aio_pika.abc.AbstractConnection, watch: Callable[..., None]) -> None:
        channel = await connection.channel(publisher_confirms=True)
        watch(channel)
        self._exchange = await channel.declare_exchange(self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        self._ready.set()

    async def run(self) -> None:
        self.attach()
        keeper = asyncio.create_task(supervise("fake order service publisher", self.url, self._session))
        try:
            while True:
                event, routing_key = await self._pending.get()
                message = aio_pika.Message(
                    json.dumps(event).encode(),
                    message_id=event["id"],
                    content_type="application/cloudevents+json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                )
                while True:
                    await self._ready.wait()
                    assert self._exchange is not None
                    try:
                        await self._exchange.publish(message, routing_key=routing_key)
                        break
                    except Exception:  # noqa: BLE001 - the broker went away: wait for the next connection
                        self._ready.clear()
                        await asyncio.sleep(0.5)
                self.published += 1
                self._pending.task_done()
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper


def create_fake_app(
    orders_per_customer: int,
    *,
    service: FakeOrderService | None = None,
    customers: Iterable[uuid.UUID] = (),
    publish_events: str | None = None,
    change_every: float = 5.0,
) -> Starlette:
    """The fake's HTTP app; with `publish_events` (an AMQP URL) its lifespan publishes the events
    of every order it serves and changes one order every `change_every` seconds. `customers` have
    orders from the start (published as `created` events once the publisher runs)."""
    fake = service or FakeOrderService(orders_per_customer)
    customers = list(customers)
    if not publish_events:
        for customer_id in customers:
            fake.ensure(customer_id)

    async def list_orders(request: Request) -> JSONResponse:
        q = request.query_params
        try:
            customer_id = uuid.UUID(q["customerId"]) if "customerId" in q else None
            page = max(1, int(q.get("page", "1")))
            limit = min(100, max(1, int(q.get("limit", "10"))))
        except ValueError:
            return JSONResponse({"error": "customerId must be a UUID; page and limit numbers"}, status_code=400)
        if customer_id is not None:
            fake.ensure(customer_id)
        descending = q.get("sortOrder", "DESC").upper() == "DESC"
        orders = fake.listing(customer_id, q.get("status"), q.get("sortBy", "created_at"), descending)
        total = len(orders)
        pages = (total + limit - 1) // limit
        return JSONResponse(
            {
                "orders": list(orders[(page - 1) * limit : page * limit]),
                "pagination": {
                    "total": total,
                    "page": page,
                    "limit": limit,
                    "totalPages": pages,
                    "hasNext": page < pages,
                    "hasPrev": page > 1,
                },
            }
        )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if not publish_events:
            yield
            return
        publisher = EventPublisher(publish_events)
        publisher.attach()
        fake.sinks.append(publisher.sink)
        for customer_id in customers:
            fake.ensure(customer_id)

        async def change() -> None:
            while True:
                await asyncio.sleep(change_every)
                fake.change_one()

        tasks = [asyncio.create_task(publisher.run()), asyncio.create_task(change())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    app = Starlette(routes=[Route("/api/orders", list_orders)], lifespan=lifespan)
    app.state.fake = fake
    return app
