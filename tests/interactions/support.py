"""Builders shared by the interaction tests."""

from __future__ import annotations

from typing import Any

import httpx

Headers = dict[str, str]


async def create_interaction(
    client: httpx.AsyncClient, headers: Headers, customer_id: str, **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"customer_id": customer_id, "type": "call", "subject": "Intro call"}
    body.update(overrides)
    response = await client.post("/api/interactions", json=body, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def create_contact(client: httpx.AsyncClient, headers: Headers, customer_id: str) -> dict[str, Any]:
    body = {"customer_id": customer_id, "first_name": "Olena", "last_name": "Kovalenko"}
    response = await client.post("/api/contacts", json=body, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]
