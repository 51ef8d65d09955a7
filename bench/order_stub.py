"""A stand-in Order Service for `make bench`: every customer has the same three orders.

The CRM endpoints that call the Order Service (a customer's orders and statistics) are
measured with it, so their figures are the CRM's own work plus one quick local HTTP call.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from typing import Any


def _order(customer_id: str, n: int) -> dict[str, Any]:
    created = f"2025-0{n + 1}-15T10:00:00.000Z"
    amount = f"{125 * (n + 1)}.50"
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{customer_id}/{n}")),
        "customer_id": customer_id,
        "order_number": f"ORD-{n + 1:06d}",
        "status": ("delivered", "shipped", "new")[n],
        "total_amount": amount,
        "shipping_address": "вул. Шевченка, 1",
        "shipping_city": "Київ",
        "shipping_postal_code": "01001",
        "shipping_country": "Україна",
        "shipping_method": "courier",
        "payment_method": "card",
        "notes": None,
        "created_at": created,
        "updated_at": created,
        "items": [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{customer_id}/{n}/item")),
                "product_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "product")),
                "quantity": 1,
                "unit_price": amount,
                "total_price": amount,
            }
        ],
    }


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    query = urllib.parse.parse_qs(scope["query_string"].decode())
    customer_id = query.get("customerId", [str(uuid.UUID(int=0))])[0]
    limit = int(query.get("limit", ["10"])[0])
    orders = [_order(customer_id, n) for n in range(3)]
    body = {
        "orders": orders[:limit],
        "pagination": {"total": 3, "page": 1, "limit": limit, "totalPages": 1, "hasNext": False, "hasPrev": False},
    }
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
