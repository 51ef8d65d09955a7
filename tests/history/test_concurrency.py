"""Entries of one record are in version order, newest first, even under concurrent writers."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx

from tests.helpers import create_customer
from tests.history.support import history, of


async def test_concurrent_updates_of_one_customer_are_entries_in_version_order(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    writers = 20
    responses = await asyncio.gather(
        *(
            client.put(f"/api/customers/{customer['id']}", json={"notes": f"writer {i}"}, headers=admin)
            for i in range(writers)
        )
    )
    assert [r.status_code for r in responses] == [200] * writers

    entries = of(await history(client, admin, customer["id"]), customer["id"])
    # Newest first is exactly version order, with no gaps and one entry per version.
    assert [e["version"] for e in entries] == list(range(writers + 1, 0, -1))
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)
    # Each entry's old value is the previous entry's new value: no write was recorded against
    # a state it did not see.
    updates = list(reversed(entries[:-1]))
    for previous, entry in itertools.pairwise(updates):
        assert entry["changes"]["notes"]["old"] == previous["changes"]["notes"]["new"]
    final = (await client.get(f"/api/customers/{customer['id']}", headers=admin)).json()
    assert entries[0]["changes"]["notes"]["new"] == final["notes"]


async def test_concurrent_primary_switches_keep_each_contacts_entries_in_order(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(
        client, admin, contacts=[{"first_name": f"C{i}", "last_name": "X"} for i in range(4)]
    )
    contacts: list[dict[str, Any]] = customer["contacts"]
    switches = [contacts[i % 4]["id"] for i in range(16)]
    responses = await asyncio.gather(
        *(client.put(f"/api/contacts/{contact_id}/primary", headers=admin) for contact_id in switches)
    )
    assert all(r.status_code == 200 for r in responses)

    entries = await history(client, admin, customer["id"], entity="contact")
    final = {
        c["id"]: c for c in (await client.get(f"/api/customers/{customer['id']}", headers=admin)).json()["contacts"]
    }
    for contact_id, contact in final.items():
        mine = of(entries, contact_id)
        assert [e["version"] for e in mine] == list(range(contact["version"], 0, -1))
        flags = [e["changes"]["is_primary"]["new"] for e in reversed(mine) if e["action"] == "updated"]
        # A contact's flag alternates: each switch is recorded exactly where it happened.
        assert all(a != b for a, b in itertools.pairwise(flags))
        # Every entry of a contact names its flag (created: false is a value); the newest is now's.
        assert mine[0]["changes"]["is_primary"]["new"] == contact["is_primary"]
