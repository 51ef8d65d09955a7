"""Through HTTP: the service's own consumer (lifespan, ORDER_EVENTS_AMQP_URL) fills the projection, and
the statistics answer its figures when the Order Service cannot."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal

from tests.helpers import create_customer
from tests.orders.conftest import MakeCrm
from tests.orders.projection.amqp import Broker, order_event
from tests.orders.stub import StubOrderService, answer


async def test_statistics_fall_back_to_the_projection(
    make_crm: MakeCrm, broker: Broker, stub: StubOrderService, admin: dict[str, str]
) -> None:
    amqp = {
        "order_events_amqp_url": broker.url,
        "order_events_exchange": broker.exchange,
        "order_events_queue": broker.queue,
    }
    async with make_crm(None, **amqp) as crm:
        customer_id = (await create_customer(crm.http, admin))["id"]
        path = f"/api/customers/{customer_id}/statistics"
        before = (await crm.http.get(path, headers=admin)).json()["orders"]
        assert before["available"] is False

        customer = uuid.UUID(customer_id)
        a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        consumer = crm.app.state.order_events_consumer
        await asyncio.wait_for(consumer.connected.wait(), 10)
        for event in (
            order_event(a, customer, 2, "delivered", "100.10"),
            order_event(a, customer, 1, "new", "1.00"),  # late and older: ignored
            order_event(b, customer, 1, "cancelled", "5.00"),
            order_event(c, customer, 1, "shipped", 0.2),
        ):
            await broker.publish(event)
        for _ in range(200):
            if consumer.applied == 4:
                break
            await asyncio.sleep(0.05)
        body = json.loads((await crm.http.get(path, headers=admin)).text, parse_float=Decimal)
    orders = body["orders"]
    assert orders.pop("as_of")
    assert orders == {
        "available": True,
        "source": "projection",
        "total": 3,
        "totalAmount": Decimal("105.30"),
        "averageAmount": Decimal("35.10"),
        "lastOrderDate": "2026-01-01T00:00:00+00:00",
        "byStatus": {"delivered": 1, "cancelled": 1, "shipped": 1},
    }

    # The Order Service answering: its own figures, no `source`; failing: the projection again.
    async with make_crm(stub.url) as crm:
        live = (await crm.http.get(path, headers=admin)).json()["orders"]
        assert live["available"] is True
        assert "source" not in live
        assert live["total"] == 0
        stub.behaviour = answer(503)
        down = (await crm.http.get(path, headers=admin)).json()["orders"]
        assert down["source"] == "projection"
        assert down["total"] == 3
