"""Builders shared by the history tests."""

from __future__ import annotations

from typing import Any

import httpx

Headers = dict[str, str]


async def history(client: httpx.AsyncClient, headers: Headers, customer_id: str, **query: Any) -> list[dict[str, Any]]:
    """The customer's whole history, newest first, read through the endpoint page by page."""
    entries: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100, **query}
    while True:
        response = await client.get(f"/api/customers/{customer_id}/history", params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        entries += body["history"]
        if not body["pagination"]["hasNext"]:
            return entries
        params["cursor"] = body["pagination"]["nextCursor"]


def of(entries: list[dict[str, Any]], entity_id: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["entity_id"] == entity_id]
