"""Builders shared by the interaction tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import asyncpg
import httpx

from crm.db.reads import DriverStatement

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


@contextmanager
def driver_statements() -> Iterator[list[tuple[str, list[Any]]]]:
    """The compiled statements (SQL and parameters) that searches run on the driver while the
    block runs: they bypass SQLAlchemy's events, which tests.plans.statements listens to."""
    seen: list[tuple[str, list[Any]]] = []
    original = DriverStatement.fetch

    async def fetch(self: DriverStatement, connection: asyncpg.Connection, values: Mapping[str, Any]) -> list[Any]:
        merged = {**self.defaults, **values}
        seen.append((self.sql, [merged[name] for name in self.names]))
        return await original(self, connection, values)

    DriverStatement.fetch = fetch  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        DriverStatement.fetch = original  # type: ignore[method-assign]
