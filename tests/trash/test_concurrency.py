"""Delete and restore from concurrent connections: one wins cleanly, and every maintained
counter, segment and statistic still equals a direct count."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import asyncpg
import httpx
from starlette.applications import Starlette

from crm.trash.service import purge
from tests.helpers import create_customer
from tests.trash.support import delete, figures, interaction

Headers = dict[str, str]


async def _live_and_trashed(db: asyncpg.Connection[Any], customer_id: str) -> tuple[int, int]:
    cid = uuid.UUID(customer_id)
    return (
        int(await db.fetchval("SELECT count(*) FROM customers WHERE id = $1", cid)),
        int(await db.fetchval("SELECT count(*) FROM trash WHERE entity = 'customer' AND id = $1", cid)),
    )


async def test_two_deletes_of_one_customer_from_two_connections(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    path = f"/api/customers/{customer['id']}"
    async with db.transaction():  # both requests queue behind this lock, then race for the row
        await db.execute("SELECT 1 FROM customers WHERE id = $1 FOR UPDATE", uuid.UUID(customer["id"]))
        racing = [asyncio.create_task(client.delete(path, headers=admin)) for _ in range(2)]
        await asyncio.sleep(0.3)
        assert not any(task.done() for task in racing)
    statuses = sorted(answer.status_code for answer in await asyncio.gather(*racing))
    assert statuses == [204, 404]
    assert await _live_and_trashed(db, customer["id"]) == (0, 1)
    assert await db.fetchval("SELECT count(*) FROM trash WHERE entity = 'contact'") == 1


async def test_two_restores_of_one_customer_from_two_connections(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    await delete(client, admin, f"/api/customers/{customer['id']}")
    path = f"/api/customers/{customer['id']}/restore"
    async with db.transaction():
        await db.execute(
            "SELECT 1 FROM trash WHERE entity = 'customer' AND id = $1 FOR UPDATE", uuid.UUID(customer["id"])
        )
        racing = [asyncio.create_task(client.post(path, headers=admin)) for _ in range(2)]
        await asyncio.sleep(0.3)
        assert not any(task.done() for task in racing)
    answers = await asyncio.gather(*racing)
    assert sorted(a.status_code for a in answers) == [200, 409]
    loser = next(a for a in answers if a.status_code == 409)
    assert loser.json()["errors"][0]["field"] == "id"
    assert await _live_and_trashed(db, customer["id"]) == (1, 0)
    assert await db.fetchval("SELECT count(*) FROM contacts WHERE customer_id = $1", uuid.UUID(customer["id"])) == 1


async def test_delete_and_restore_of_one_customer_racing_stay_consistent(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    cid = customer["id"]
    for _ in range(10):
        answers = await asyncio.gather(
            client.delete(f"/api/customers/{cid}", headers=admin),
            client.post(f"/api/customers/{cid}/restore", headers=admin),
            client.post(f"/api/customers/{cid}/restore", headers=admin),
            client.delete(f"/api/customers/{cid}", headers=admin),
        )
        assert {a.status_code for a in answers} <= {200, 204, 404, 409}, [a.text for a in answers]
        assert sum(await _live_and_trashed(db, cid)) == 1  # live or in the trash, never both or neither
        contacts = await db.fetchval("SELECT count(*) FROM contacts WHERE customer_id = $1", uuid.UUID(cid))
        trashed = await db.fetchval(
            "SELECT count(*) FROM trash WHERE entity = 'contact' AND customer_id = $1", uuid.UUID(cid)
        )
        assert contacts + trashed == 1
    counts = await figures(client, admin, db)
    assert counts["served"] == counts["direct"]


async def test_counters_segments_and_statistics_stay_exact_under_concurrent_writers(
    app: Starlette, client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    rng = random.Random(11)
    statuses = ["active", "lead", "prospect", "customer", "inactive"]
    customers = [
        await create_customer(client, admin, status=rng.choice(statuses), type=rng.choice(["business", None]))
        for _ in range(12)
    ]
    notes = [await interaction(client, admin, c["id"], type=rng.choice(["call", "email", "note"])) for c in customers]

    answered: list[int] = []

    async def churn(worker: int) -> None:
        local = random.Random(worker)
        for _ in range(12):
            status = await step(local)
            answered.append(status)

    async def step(local: random.Random) -> int:
        customer = local.choice(customers)
        note = local.choice(notes)
        action = local.randrange(6)
        if action == 0:
            response = await client.delete(f"/api/customers/{customer['id']}", headers=admin)
        elif action == 1:
            response = await client.post(f"/api/customers/{customer['id']}/restore", headers=admin)
        elif action == 2:
            response = await client.delete(f"/api/interactions/{note['id']}", headers=admin)
        elif action == 3:
            response = await client.post(f"/api/interactions/{note['id']}/restore", headers=admin)
        elif action == 4:
            status = local.choice(statuses)
            response = await client.put(f"/api/customers/{customer['id']}", json={"status": status}, headers=admin)
        else:
            response = await client.post(
                "/api/interactions",
                json={"customer_id": customer["id"], "type": "meeting", "subject": "churn"},
                headers=admin,
            )
        return response.status_code

    async def purging() -> None:
        for _ in range(5):
            await purge(app.state.engine, 0, 2)
            await asyncio.sleep(0.05)

    await asyncio.gather(*(churn(w) for w in range(6)), purging())

    assert all(status < 500 for status in answered), sorted(answered)
    assert {200, 201, 204} <= set(answered)  # the churn did change things

    counts = await figures(client, admin, db)
    assert counts["served"] == counts["direct"]
    # Everything is live, in the trash, or was purged: no row in two places.
    both = await db.fetchval(
        "SELECT count(*) FROM trash t WHERE EXISTS (SELECT FROM customers c WHERE c.id = t.id) "
        "OR EXISTS (SELECT FROM interactions i WHERE i.id = t.id)"
    )
    assert both == 0


async def test_a_customers_delete_and_its_new_interactions_never_wait_on_each_other(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    """Every writer takes the interaction roll-ups' month rows before the customer's event
    numbers, the delete included (it numbers what it took only after the move): with the other
    order a delete and a new interaction of the same month deadlocked (503 after 1 s)."""
    customers = [await create_customer(client, admin) for _ in range(8)]
    for customer in customers:
        await interaction(client, admin, customer["id"], type="call")

    async def new_interaction(customer_id: str) -> int:
        response = await client.post(
            "/api/interactions", json={"customer_id": customer_id, "type": "note", "subject": "race"}, headers=admin
        )
        return response.status_code

    answered: list[int] = []
    for customer in customers:
        statuses = await asyncio.gather(
            client.delete(f"/api/customers/{customer['id']}", headers=admin),
            *(new_interaction(customer["id"]) for _ in range(3)),
        )
        answered += [s if isinstance(s, int) else s.status_code for s in statuses]
    # The delete succeeds; each interaction is created before it (201) or refused after (404/422).
    assert all(status in {201, 204, 404, 422} for status in answered), sorted(answered)
    assert answered.count(204) == len(customers)
