"""Builders shared by the trash and erasure tests."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

Headers = dict[str, str]


async def contact(client: httpx.AsyncClient, headers: Headers, customer_id: str, **fields: Any) -> dict[str, Any]:
    body = {"customer_id": customer_id, "first_name": "Olena", "last_name": "Kovalenko", **fields}
    response = await client.post("/api/contacts", json=body, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def interaction(client: httpx.AsyncClient, headers: Headers, customer_id: str, **fields: Any) -> dict[str, Any]:
    body = {"customer_id": customer_id, "type": "call", "subject": "Intro call", **fields}
    response = await client.post("/api/interactions", json=body, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def delete(client: httpx.AsyncClient, headers: Headers, path: str) -> None:
    response = await client.delete(path, headers=headers)
    assert response.status_code == 204, response.text


async def trash(client: httpx.AsyncClient, headers: Headers, **query: Any) -> list[dict[str, Any]]:
    """The whole trash listing the caller sees, page by page."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100, **query}
    while True:
        response = await client.get("/api/trash", params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["trash"]
        if not body["pagination"]["hasNext"]:
            return items
        params["cursor"] = body["pagination"]["nextCursor"]


async def figures(client: httpx.AsyncClient, headers: Headers, db: asyncpg.Connection[Any]) -> dict[str, Any]:
    """What the service answers from its maintained aggregates, beside direct counts of the live rows."""
    segments = (await client.get("/api/customers/segments", headers=headers)).json()
    statistics = (await client.get("/api/interactions/statistics", headers=headers)).json()
    by_status = {
        r["status"]: int(r["n"]) for r in await db.fetch("SELECT status, count(*) AS n FROM customers GROUP BY 1")
    }
    by_type = {
        r["type"]: int(r["n"]) for r in await db.fetch("SELECT type, count(*) AS n FROM interactions GROUP BY 1")
    }
    return {
        "served": {
            "customers": segments["total"],
            "by_status": {k: v for k, v in segments["byStatus"].items() if v},
            "interactions": statistics["total"],
            "by_type": {k: v for k, v in statistics["byType"].items() if v},
        },
        "direct": {
            "customers": sum(by_status.values()),
            "by_status": by_status,
            "interactions": sum(by_type.values()),
            "by_type": by_type,
        },
    }


def uid(value: str) -> uuid.UUID:
    return uuid.UUID(value)
