"""`crm fake-order-service`: a stand-in Order Service for development.

Serves deterministic orders for any customer id (the id seeds the generator), in the
documented format, honouring page/limit/status/sortBy/sortOrder. It checks nothing:
it is for seeing the CRM's order views without the real service, never for production.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

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


# Generating thousands of orders takes a noticeable fraction of a second; without this every
# page of a large customer would pay it again, and paging through all of them (as the CRM's
# statistics do) would overrun the CRM's timeout. A few customers' listings are kept.
@lru_cache(maxsize=4)
def _listing(
    customer_id: uuid.UUID, count: int, status: str | None, sort_by: str, descending: bool
) -> tuple[dict[str, Any], ...]:
    orders = fake_orders(customer_id, count)
    if status:
        orders = [o for o in orders if o["status"] == status]
    if sort_by in _SORTABLE:
        key = (lambda o: Decimal(str(o[sort_by]))) if sort_by == "total_amount" else (lambda o: str(o[sort_by]))
        orders.sort(key=key, reverse=descending)
    return tuple(orders)


def create_fake_app(orders_per_customer: int) -> Starlette:
    async def list_orders(request: Request) -> JSONResponse:
        q = request.query_params
        try:
            customer_id = uuid.UUID(q.get("customerId", ""))
            page = max(1, int(q.get("page", "1")))
            limit = min(100, max(1, int(q.get("limit", "10"))))
        except ValueError:
            return JSONResponse({"error": "customerId, page and limit are required"}, status_code=400)
        descending = q.get("sortOrder", "DESC").upper() == "DESC"
        orders = _listing(customer_id, orders_per_customer, q.get("status"), q.get("sortBy", "created_at"), descending)
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

    return Starlette(routes=[Route("/api/orders", list_orders)])
