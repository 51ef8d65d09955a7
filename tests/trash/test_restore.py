"""Delete moves to the trash, restore brings back exactly what the delete took, through HTTP."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx

from tests.helpers import assert_problem, create_customer
from tests.history.support import history, of
from tests.trash.support import contact, delete, figures, interaction, trash

Headers = dict[str, str]


async def test_a_deleted_customer_leaves_every_read_and_comes_back_as_it_was(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(
        client,
        admin,
        first_name="Trashy",
        company_name="Bin Ltd",
        status="lead",
        contacts=[{"first_name": "Pat", "last_name": "Primary"}, {"first_name": "Sam", "last_name": "Second"}],
    )
    cid = customer["id"]
    call = await interaction(client, admin, cid, contact_id=customer["contacts"][0]["id"], subject="Trash talk")
    before = await figures(client, admin, db)

    await delete(client, admin, f"/api/customers/{cid}")

    assert_problem(await client.get(f"/api/customers/{cid}", headers=admin), 404)
    for c in customer["contacts"]:
        assert_problem(await client.get(f"/api/contacts/{c['id']}", headers=admin), 404)
    assert_problem(await client.get(f"/api/interactions/{call['id']}", headers=admin), 404)
    listed = (await client.get("/api/customers", params={"search": "Trashy"}, headers=admin)).json()
    assert listed["customers"] == []
    found = (await client.get("/api/customers/search", params={"query": "Trashy"}, headers=admin)).json()
    assert found == []
    during = await figures(client, admin, db)
    assert during["served"] == during["direct"]
    assert during["served"]["customers"] == before["served"]["customers"] - 1
    assert during["served"]["interactions"] == before["served"]["interactions"] - 1
    [item] = await trash(client, admin)  # the customer only: its contacts went with it
    assert item["entity"] == "customer"
    assert item["id"] == cid
    assert item["summary"] == "Trashy Petrenko (Bin Ltd)"
    assert item["deleted_by"] is not None
    assert datetime.fromisoformat(item["purge_after"]) - datetime.fromisoformat(item["deleted_at"]) == timedelta(
        days=30  # CRM_TRASH_DAYS' default
    )

    response = await client.post(f"/api/customers/{cid}/restore", headers=admin)

    assert response.status_code == 200, response.text
    restored = response.json()
    assert restored["version"] == customer["version"] + 2  # deleted: v + 1, restored: v + 2
    assert response.headers["ETag"] == f'"{restored["version"]}"'
    for name in ("first_name", "last_name", "email", "phone", "company_name", "status", "owner_id", "created_at"):
        assert restored[name] == customer[name], name
    assert [c["id"] for c in restored["contacts"]] == [c["id"] for c in customer["contacts"]]
    assert restored["primary_contact"]["id"] == customer["primary_contact"]["id"]
    got = await client.get(f"/api/customers/{cid}", headers=admin)
    assert got.status_code == 200
    assert got.json()["contacts"] == restored["contacts"]
    back = await client.get(f"/api/interactions/{call['id']}", headers=admin)
    assert back.status_code == 200
    assert back.json()["contact_id"] == customer["contacts"][0]["id"]
    assert back.json()["subject"] == "Trash talk"
    assert await trash(client, admin) == []
    after = await figures(client, admin, db)
    assert after == before


async def test_the_email_of_a_trashed_customer_is_free_and_its_restore_then_409s_naming_email(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    customer = await create_customer(client, admin, email="taken.later@example.com")
    await delete(client, admin, f"/api/customers/{customer['id']}")
    newcomer = await create_customer(client, admin, email="Taken.Later@example.com")

    body = assert_problem(await client.post(f"/api/customers/{customer['id']}/restore", headers=admin), 409, "email")
    assert "email" in body["detail"]

    await delete(client, admin, f"/api/customers/{newcomer['id']}")
    assert (await client.post(f"/api/customers/{customer['id']}/restore", headers=admin)).status_code == 200


async def test_restoring_a_customer_brings_back_exactly_its_deletions_rows(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(
        client,
        admin,
        contacts=[{"first_name": "Early", "last_name": "Gone"}, {"first_name": "Stays", "last_name": "On"}],
    )
    cid = customer["id"]
    early, stays = customer["contacts"]
    solo = await interaction(client, admin, cid, subject="Deleted alone")
    kept = await interaction(client, admin, cid, subject="Went with the customer")
    await delete(client, admin, f"/api/contacts/{early['id']}")
    await delete(client, admin, f"/api/interactions/{solo['id']}")
    await delete(client, admin, f"/api/customers/{cid}")
    assert await db.fetchval("SELECT count(DISTINCT deletion_id) FROM trash") == 3

    restored = (await client.post(f"/api/customers/{cid}/restore", headers=admin)).json()

    assert [c["id"] for c in restored["contacts"]] == [stays["id"]]
    assert (await client.get(f"/api/interactions/{kept['id']}", headers=admin)).status_code == 200
    assert_problem(await client.get(f"/api/interactions/{solo['id']}", headers=admin), 404)
    assert_problem(await client.get(f"/api/contacts/{early['id']}", headers=admin), 404)
    assert sorted((i["entity"], i["id"]) for i in await trash(client, admin)) == sorted(
        [("contact", early["id"]), ("interaction", solo["id"])]
    )
    # Each of those restores on its own now that its customer is live.
    assert (await client.post(f"/api/contacts/{early['id']}/restore", headers=admin)).status_code == 200
    assert (await client.post(f"/api/interactions/{solo['id']}/restore", headers=admin)).status_code == 200
    assert await trash(client, admin) == []


async def test_contact_and_interaction_of_a_trashed_customer_409_naming_customer_id(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    alone = await contact(client, admin, customer["id"], first_name="Alone")
    note = await interaction(client, admin, customer["id"])
    await delete(client, admin, f"/api/contacts/{alone['id']}")
    await delete(client, admin, f"/api/interactions/{note['id']}")
    await delete(client, admin, f"/api/customers/{customer['id']}")

    for path in (f"/api/contacts/{alone['id']}/restore", f"/api/interactions/{note['id']}/restore"):
        body = assert_problem(await client.post(path, headers=admin), 409, "customer_id")
        assert "trash" in body["errors"][0]["message"]


async def test_restoring_a_live_record_is_409_and_an_unknown_one_404(client: httpx.AsyncClient, admin: Headers) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    note = await interaction(client, admin, customer["id"])
    for path in (
        f"/api/customers/{customer['id']}/restore",
        f"/api/contacts/{customer['contacts'][0]['id']}/restore",
        f"/api/interactions/{note['id']}/restore",
    ):
        assert_problem(await client.post(path, headers=admin), 409, "id")
    for kind in ("customers", "contacts", "interactions"):
        assert_problem(await client.post(f"/api/{kind}/{uuid.uuid4()}/restore", headers=admin), 404)
    assert_problem(await client.post("/api/customers/not-a-uuid/restore", headers=admin), 422, "customer_id")


async def test_a_deleted_contact_comes_back_with_the_interactions_it_left_unattributed(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    person = await contact(client, admin, customer["id"], first_name="Linked")
    linked = await interaction(client, admin, customer["id"], contact_id=person["id"])
    reassigned = await interaction(client, admin, customer["id"], contact_id=person["id"])
    trashed_too = await interaction(client, admin, customer["id"], contact_id=person["id"])
    await delete(client, admin, f"/api/contacts/{person['id']}")
    unlinked = await client.get(f"/api/interactions/{linked['id']}", headers=admin)
    assert unlinked.json()["contact_id"] is None
    # A change of the interaction like any other: its version (ETag) moves and history says so.
    assert unlinked.json()["version"] == linked["version"] + 1
    [change, _] = of(await history(client, admin, customer["id"]), linked["id"])
    assert (change["action"], change["version"]) == ("updated", linked["version"] + 1)
    assert change["changes"] == {"contact_id": {"old": person["id"], "new": None}}
    # Someone points one of them elsewhere meanwhile: that choice stands.
    other = customer["contacts"][0]["id"]
    moved = await client.put(f"/api/interactions/{reassigned['id']}", json={"contact_id": other}, headers=admin)
    assert moved.status_code == 200, moved.text
    await delete(client, admin, f"/api/interactions/{trashed_too['id']}")

    restored = await client.post(f"/api/contacts/{person['id']}/restore", headers=admin)

    assert restored.status_code == 200, restored.text
    assert restored.json()["is_primary"] is False
    relinked = (await client.get(f"/api/interactions/{linked['id']}", headers=admin)).json()
    assert (relinked["contact_id"], relinked["version"]) == (person["id"], linked["version"] + 2)
    newest = of(await history(client, admin, customer["id"]), linked["id"])[0]
    assert newest["changes"] == {"contact_id": {"old": None, "new": person["id"]}}
    assert newest["version"] == linked["version"] + 2
    assert (await client.get(f"/api/interactions/{reassigned['id']}", headers=admin)).json()["contact_id"] == other
    back = await client.post(f"/api/interactions/{trashed_too['id']}/restore", headers=admin)
    assert back.json()["contact_id"] == person["id"]


async def test_an_interaction_restored_before_its_contact_is_re_linked_by_the_contacts_restore(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    person = await contact(client, admin, customer["id"])
    note = await interaction(client, admin, customer["id"], contact_id=person["id"])
    await delete(client, admin, f"/api/interactions/{note['id']}")
    await delete(client, admin, f"/api/contacts/{person['id']}")

    first = await client.post(f"/api/interactions/{note['id']}/restore", headers=admin)
    assert first.status_code == 200, first.text
    assert first.json()["contact_id"] is None  # its contact is in the trash
    assert (await client.post(f"/api/contacts/{person['id']}/restore", headers=admin)).status_code == 200
    assert (await client.get(f"/api/interactions/{note['id']}", headers=admin)).json()["contact_id"] == person["id"]


async def test_the_primary_rule_holds_through_delete_and_restore(client: httpx.AsyncClient, admin: Headers) -> None:
    customer = await create_customer(
        client,
        admin,
        contacts=[{"first_name": "Old", "last_name": "Primary"}, {"first_name": "Next", "last_name": "One"}],
    )
    old, following = customer["contacts"]
    assert old["is_primary"]
    await delete(client, admin, f"/api/contacts/{old['id']}")
    promoted = (await client.get(f"/api/contacts/{following['id']}", headers=admin)).json()
    assert promoted["is_primary"] is True

    restored = (await client.post(f"/api/contacts/{old['id']}/restore", headers=admin)).json()

    assert restored["is_primary"] is False  # the customer has another primary now
    contacts = (await client.get(f"/api/contacts/customer/{customer['id']}", headers=admin)).json()
    assert [c["id"] for c in contacts if c["is_primary"]] == [following["id"]]

    # A customer left without contacts: the restored one (not primary when deleted) becomes primary.
    await delete(client, admin, f"/api/contacts/{old['id']}")
    await delete(client, admin, f"/api/contacts/{following['id']}")
    assert (await client.get(f"/api/contacts/customer/{customer['id']}", headers=admin)).json() == []
    again = (await client.post(f"/api/contacts/{old['id']}/restore", headers=admin)).json()
    assert again["is_primary"] is True
    last = (await client.post(f"/api/contacts/{following['id']}/restore", headers=admin)).json()
    assert last["is_primary"] is False


async def test_restores_write_restored_entries_and_a_trashed_customers_history_answers(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    customer = await create_customer(client, admin, status="lead", contacts=[{"first_name": "A", "last_name": "B"}])
    cid = customer["id"]
    note = await interaction(client, admin, cid, subject="History lesson")
    await delete(client, admin, f"/api/customers/{cid}")

    trashed = await history(client, admin, cid)
    assert {(e["entity"], e["action"]) for e in trashed if e["action"] == "deleted"} == {
        ("customer", "deleted"),
        ("contact", "deleted"),
        ("interaction", "deleted"),
    }

    assert (await client.post(f"/api/customers/{cid}/restore", headers=admin)).status_code == 200
    entries = await history(client, admin, cid)

    mine = of(entries, cid)
    assert [e["action"] for e in mine] == ["restored", "deleted", "created"]
    assert [e["version"] for e in mine] == [3, 2, 1]
    assert mine[0]["changes"]["status"] == {"old": None, "new": "lead"}
    assert mine[0]["changes"]["first_name"] == {"old": None, "new": customer["first_name"]}
    assert [e["action"] for e in of(entries, note["id"])] == ["restored", "deleted", "created"]
    assert of(entries, note["id"])[0]["changes"]["subject"] == {"old": None, "new": "History lesson"}
    contact_id = customer["contacts"][0]["id"]
    assert [e["action"] for e in of(entries, contact_id)] == ["restored", "deleted", "created"]
    restored_only = await history(client, admin, cid, action="restored")
    assert len(restored_only) == 3


async def test_each_entity_deletes_to_the_trash_and_restores(client: httpx.AsyncClient, admin: Headers) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    person = await contact(client, admin, customer["id"], first_name="Cora", last_name="Contact", position="CTO")
    note = await interaction(client, admin, customer["id"], type="meeting", subject="Kick-off", description="notes")
    await delete(client, admin, f"/api/contacts/{person['id']}")
    await delete(client, admin, f"/api/interactions/{note['id']}")

    listed = {i["id"]: i for i in await trash(client, admin)}
    assert listed[person["id"]]["entity"] == "contact"
    assert listed[person["id"]]["summary"] == "Cora Contact"
    assert listed[person["id"]]["customer_id"] == customer["id"]
    assert listed[note["id"]]["summary"] == "meeting: Kick-off"
    assert [i["entity"] for i in await trash(client, admin, entity="interaction")] == ["interaction"]

    back = (await client.post(f"/api/contacts/{person['id']}/restore", headers=admin)).json()
    assert {k: back[k] for k in ("first_name", "last_name", "position")} == {
        "first_name": "Cora",
        "last_name": "Contact",
        "position": "CTO",
    }
    assert back["version"] == person["version"] + 2
    again = (await client.post(f"/api/interactions/{note['id']}/restore", headers=admin)).json()
    assert {k: again[k] for k in ("type", "subject", "description", "date", "user_id")} == {
        k: note[k] for k in ("type", "subject", "description", "date", "user_id")
    }
    assert again["version"] == note["version"] + 2
