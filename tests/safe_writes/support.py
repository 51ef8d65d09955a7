"""The three versioned resources, described once so each safe-writes rule is tested on all of them."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from tests.helpers import create_customer, customer_body

Headers = dict[str, str]
Json = dict[str, Any]


def etag(version: int) -> str:
    return f'"{version}"'


async def _customer(client: httpx.AsyncClient, headers: Headers) -> Json:
    return await create_customer(client, headers)


async def post_ok(client: httpx.AsyncClient, path: str, body: Json, headers: Headers) -> Json:
    response = await client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    data: Json = response.json()
    return data


async def _contact(client: httpx.AsyncClient, headers: Headers) -> Json:
    customer = await create_customer(client, headers)
    body = {"customer_id": customer["id"], "first_name": "Olena", "last_name": "Kovalenko", "position": "CTO"}
    return await post_ok(client, "/api/contacts", body, headers)


async def _interaction(client: httpx.AsyncClient, headers: Headers) -> Json:
    customer = await create_customer(client, headers)
    body = {"customer_id": customer["id"], "type": "call", "subject": "Intro call"}
    return await post_ok(client, "/api/interactions", body, headers)


@dataclass(frozen=True)
class Kind:
    """One resource type: where it lives, how to make one, and a text field a PUT may change."""

    name: str
    field: str
    make: Callable[[httpx.AsyncClient, Headers], Awaitable[Json]]

    def url(self, resource: Json) -> str:
        return f"/api/{self.name}/{resource['id']}"

    async def row(self, db: asyncpg.Connection[Any], resource: Json) -> Json | None:
        """The stored version and field, straight from the table (None once deleted)."""
        # `name` and `field` are fixed strings of this module, never input.
        record = await db.fetchrow(
            f"SELECT version, {self.field} FROM {self.name} WHERE id = $1",  # noqa: S608
            uuid.UUID(resource["id"]),
        )
        return dict(record) if record is not None else None


CUSTOMERS = Kind("customers", "notes", _customer)
CONTACTS = Kind("contacts", "position", _contact)
INTERACTIONS = Kind("interactions", "subject", _interaction)
KINDS = [CUSTOMERS, CONTACTS, INTERACTIONS]
KIND_IDS = [k.name for k in KINDS]


# --- Idempotency-Key ---


@dataclass(frozen=True)
class Endpoint:
    """A POST that honours Idempotency-Key, and how to build a valid body for it."""

    table: str
    # A field the 422 test changes to make "the same key with a different body".
    field: str

    @property
    def path(self) -> str:
        return f"/api/{self.table}"

    async def body(self, client: httpx.AsyncClient, headers: Headers) -> Json:
        if self.table == "customers":
            # No email: its unique index would stop duplicates by itself and hide a broken key lock.
            return customer_body(email=None, phone=None)
        customer = await create_customer(client, headers)
        if self.table == "contacts":
            return {"customer_id": customer["id"], "first_name": "Olena", "last_name": "Kovalenko"}
        return {"customer_id": customer["id"], "type": "call", "subject": "Intro call"}

    async def count(self, db: asyncpg.Connection[Any]) -> int:
        n: int = await db.fetchval(f"SELECT count(*) FROM {self.table}")  # noqa: S608 - fixed names
        return n


POST_CUSTOMERS = Endpoint("customers", "last_name")
POST_CONTACTS = Endpoint("contacts", "last_name")
POST_INTERACTIONS = Endpoint("interactions", "subject")
ENDPOINTS = [POST_CUSTOMERS, POST_CONTACTS, POST_INTERACTIONS]
ENDPOINT_IDS = [e.table for e in ENDPOINTS]


def keyed(headers: Headers, key: str) -> Headers:
    return {**headers, "Idempotency-Key": key}


async def stored_keys(db: asyncpg.Connection[Any]) -> int:
    n: int = await db.fetchval("SELECT count(*) FROM idempotency_keys")
    return n
