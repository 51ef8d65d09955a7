"""The primary-contact invariant under concurrent requests.

Invariant: a customer with at least one contact has exactly one primary contact. Each
round fires a burst of parallel requests that all fight over one customer's primary
(set-primary, create-with-is_primary, update-with-is_primary, deletes, nested updates)
and then checks the stored rows. Every request runs in its own transaction on its own
pooled connection, so the interleavings are real.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.contacts.support import contact_count, create_contact, primaries
from tests.helpers import create_customer

# 404: the contact was deleted by a request that won the race; every other outcome is a success.
ACCEPTABLE = {200, 201, 204, 404}


async def _assert_invariant(db: asyncpg.Connection[Any], customer_id: str) -> None:
    count = await contact_count(db, customer_id)
    assert len(await primaries(db, customer_id)) == (1 if count else 0), f"{count} contacts"


def _assert_no_failures(responses: list[httpx.Response]) -> None:
    bad = [(r.request.method, r.request.url.path, r.status_code, r.text) for r in responses]
    bad = [b for b in bad if b[2] not in ACCEPTABLE]
    assert not bad, bad


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_mixed_burst_keeps_exactly_one_primary(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], seed: int
) -> None:
    rng = random.Random(seed)
    customer = await create_customer(client, admin)
    cid = customer["id"]
    contacts = [(await create_contact(client, admin, cid, first_name=f"Seed{i}"))["id"] for i in range(8)]

    for round_no in range(3):
        live = [str(r["id"]) for r in await db.fetch("SELECT id FROM contacts WHERE customer_id = $1", uuid.UUID(cid))]
        requests = []
        for n in range(40):
            kind = rng.choice(["primary", "primary", "create", "update", "delete", "nested"])
            target = rng.choice(live or contacts)
            if kind == "primary":
                requests.append(client.put(f"/api/contacts/{target}/primary", headers=admin))
            elif kind == "create":
                body = {"customer_id": cid, "first_name": f"R{round_no}N{n}", "last_name": "X", "is_primary": True}
                requests.append(client.post("/api/contacts", json=body, headers=admin))
            elif kind == "update":
                requests.append(client.put(f"/api/contacts/{target}", json={"is_primary": True}, headers=admin))
            elif kind == "delete":
                requests.append(client.delete(f"/api/contacts/{target}", headers=admin))
            else:
                body = {"contacts": [{"first_name": f"Nested{n}", "last_name": "Y", "is_primary": True}]}
                requests.append(client.put(f"/api/customers/{cid}", json=body, headers=admin))

        responses = await asyncio.gather(*requests)

        _assert_no_failures(list(responses))
        await _assert_invariant(db, cid)
        # What the API says agrees with the rows.
        listed = (await client.get(f"/api/contacts/customer/{cid}", headers=admin)).json()
        if listed:
            assert listed[0]["is_primary"] is True
            assert [c["id"] for c in listed if c["is_primary"]] == await primaries(db, cid)


async def test_parallel_set_primary_on_every_contact(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    ids = [(await create_contact(client, admin, customer["id"]))["id"] for _ in range(10)]

    for _ in range(3):
        responses = await asyncio.gather(
            *(client.put(f"/api/contacts/{cid}/primary", headers=admin) for cid in ids * 5)
        )
        assert [r.status_code for r in responses] == [200] * 50
        assert all(r.json()["is_primary"] is True for r in responses)
        [primary] = await primaries(db, customer["id"])
        assert primary in ids


async def test_parallel_deletes_of_everything_leave_none(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    ids = [(await create_contact(client, admin, customer["id"]))["id"] for _ in range(12)]

    responses = await asyncio.gather(*(client.delete(f"/api/contacts/{cid}", headers=admin) for cid in ids * 2))

    codes = sorted(r.status_code for r in responses)
    assert codes == [204] * 12 + [404] * 12
    assert await contact_count(db, customer["id"]) == 0
    assert await primaries(db, customer["id"]) == []


async def test_parallel_deletes_of_all_but_one_promote_the_survivor(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    ids = [(await create_contact(client, admin, customer["id"]))["id"] for _ in range(10)]
    survivor = ids[-1]

    responses = await asyncio.gather(*(client.delete(f"/api/contacts/{cid}", headers=admin) for cid in ids[:-1]))

    assert [r.status_code for r in responses] == [204] * 9
    assert await primaries(db, customer["id"]) == [survivor]


async def test_concurrent_first_contacts_make_exactly_one_primary(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    for _ in range(3):
        customer = await create_customer(client, admin)
        bodies = [
            {"customer_id": customer["id"], "first_name": f"F{i}", "last_name": "L", "is_primary": i % 3 == 0}
            for i in range(30)
        ]
        responses = await asyncio.gather(*(client.post("/api/contacts", json=b, headers=admin) for b in bodies))
        assert [r.status_code for r in responses] == [201] * 30
        assert await contact_count(db, customer["id"]) == 30
        assert len(await primaries(db, customer["id"])) == 1


async def test_concurrent_first_contacts_without_is_primary(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    responses = await asyncio.gather(
        *(
            client.post(
                "/api/contacts",
                json={"customer_id": customer["id"], "first_name": "A", "last_name": "B"},
                headers=admin,
            )
            for _ in range(25)
        )
    )
    assert [r.status_code for r in responses] == [201] * 25
    # Exactly one of them was told it is the primary, and it is the one stored as such.
    told = [r.json()["id"] for r in responses if r.json()["is_primary"]]
    assert told == await primaries(db, customer["id"])


async def test_contact_writes_racing_a_customer_delete(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    ids = [(await create_contact(client, admin, customer["id"]))["id"] for _ in range(5)]
    requests = [client.put(f"/api/contacts/{cid}/primary", headers=admin) for cid in ids]
    requests += [
        client.post(
            "/api/contacts", json={"customer_id": customer["id"], "first_name": "L", "last_name": "R"}, headers=admin
        )
        for _ in range(5)
    ]
    requests.insert(4, client.delete(f"/api/customers/{customer['id']}", headers=admin))

    responses = await asyncio.gather(*requests)

    _assert_no_failures(list(responses))
    assert await db.fetchval("SELECT count(*) FROM customers") == 0
    assert await db.fetchval("SELECT count(*) FROM contacts") == 0
