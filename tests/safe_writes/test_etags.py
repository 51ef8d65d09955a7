"""Every single-resource GET, POST and PUT answer carries `ETag: "<version>"` of what it returns."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import create_customer, customer_body
from tests.safe_writes.support import CONTACTS, KIND_IDS, KINDS, Headers, Kind, etag, post_ok


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
async def test_get_post_put_send_the_version_as_etag(client: httpx.AsyncClient, admin: Headers, kind: Kind) -> None:
    created = await kind.make(client, admin)
    assert created["version"] == 1

    got = await client.get(kind.url(created), headers=admin)
    assert got.status_code == 200
    assert got.headers["ETag"] == '"1"' == etag(got.json()["version"])

    put = await client.put(kind.url(created), json={kind.field: "first change"}, headers=admin)
    assert put.status_code == 200, put.text
    assert put.json()["version"] == 2
    assert put.headers["ETag"] == '"2"'

    again = await client.put(kind.url(created), json={kind.field: "second change"}, headers=admin)
    assert again.headers["ETag"] == '"3"' == etag(again.json()["version"])
    assert (await client.get(kind.url(created), headers=admin)).headers["ETag"] == '"3"'


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/customers", None),
        ("/api/contacts", {"first_name": "Olena", "last_name": "Kovalenko"}),
        ("/api/interactions", {"type": "meeting", "subject": "Kick-off"}),
    ],
    ids=["customers", "contacts", "interactions"],
)
async def test_post_sends_etag_and_location(
    client: httpx.AsyncClient, admin: Headers, path: str, body: dict[str, str] | None
) -> None:
    if body is None:
        payload: dict[str, object] = customer_body()
    else:
        payload = {**body, "customer_id": (await create_customer(client, admin))["id"]}

    response = await client.post(path, json=payload, headers=admin)

    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["ETag"] == etag(created["version"]) == '"1"'
    assert response.headers["Location"] == f"{path}/{created['id']}"
    assert "Idempotent-Replayed" not in response.headers


async def test_customer_etag_follows_its_own_fields_not_its_contacts(client: httpx.AsyncClient, admin: Headers) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "A"}])
    url = f"/api/customers/{customer['id']}"
    contact_id = customer["contacts"][0]["id"]

    # A contact's own write moves the contact's version, not the customer's.
    put = await client.put(f"/api/contacts/{contact_id}", json={"position": "CFO"}, headers=admin)
    assert put.headers["ETag"] == '"2"'
    got = await client.get(url, headers=admin)
    assert got.headers["ETag"] == '"1"'
    assert got.json()["contacts"][0]["version"] == 2


async def test_set_primary_sends_the_contacts_etag(client: httpx.AsyncClient, admin: Headers) -> None:
    first = await CONTACTS.make(client, admin)
    second = await post_ok(
        client, "/api/contacts", {"customer_id": first["customer_id"], "first_name": "B", "last_name": "B"}, admin
    )
    assert (first["is_primary"], second["is_primary"]) == (True, False)

    promoted = await client.put(f"/api/contacts/{second['id']}/primary", headers=admin)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["version"] == 2
    assert promoted.headers["ETag"] == '"2"'

    # Already primary: nothing changes, the same tag comes back.
    again = await client.put(f"/api/contacts/{second['id']}/primary", headers=admin)
    assert again.status_code == 200
    assert again.headers["ETag"] == '"2"'
    # The demoted one moved too, and its GET says so.
    assert (await client.get(f"/api/contacts/{first['id']}", headers=admin)).headers["ETag"] == '"2"'


async def test_list_and_search_responses_carry_no_etag(client: httpx.AsyncClient, admin: Headers) -> None:
    await create_customer(client, admin)
    listed = await client.get("/api/customers", headers=admin)
    assert listed.status_code == 200
    # A collection has no single version; a tag here would invite If-Match against the wrong thing.
    assert "ETag" not in listed.headers
