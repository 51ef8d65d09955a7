"""Subscribing: the endpoints, their permissions and their refusals (422 naming the field)."""

from __future__ import annotations

import base64
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import assert_problem
from tests.webhooks.receiver import Receiver


async def subscribe(client: httpx.AsyncClient, admin: dict[str, str], url: str, *events: str) -> dict[str, Any]:
    response = await client.post(
        "/api/webhooks", json={"url": url, "events": list(events or ["*"]), "description": "test"}, headers=admin
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_subscription_answers_its_secret_once(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver
) -> None:
    created = await subscribe(client, admin, receiver.url + "/hook", "crm.customer.*", "crm.contact.created")
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    assert created["events"] == ["crm.customer.*", "crm.contact.created"]
    assert created["enabled"] is True

    one = await client.get(f"/api/webhooks/{created['id']}", headers=admin)
    assert one.status_code == 200
    assert "secret" not in one.json()
    assert one.json()["url"] == receiver.url + "/hook"
    listed = await client.get("/api/webhooks", headers=admin)
    assert [w["id"] for w in listed.json()["webhooks"]] == [created["id"]]
    assert secret not in listed.text
    assert '"secret"' not in listed.text

    changed = await client.patch(
        f"/api/webhooks/{created['id']}", json={"events": ["*"], "description": None}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["events"] == ["*"]
    assert changed.json()["description"] is None

    rotated = await client.post(f"/api/webhooks/{created['id']}/rotate-secret", headers=admin)
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != secret
    assert rotated.json()["previous_secret_expires_at"] is not None

    assert (await client.delete(f"/api/webhooks/{created['id']}", headers=admin)).status_code == 204
    assert_problem(await client.get(f"/api/webhooks/{created['id']}", headers=admin), 404)
    assert_problem(await client.delete(f"/api/webhooks/{created['id']}", headers=admin), 404)


async def test_an_admin_disables_and_resumes_a_subscription(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver
) -> None:
    created = await subscribe(client, admin, receiver.url)
    off = await client.patch(f"/api/webhooks/{created['id']}", json={"enabled": False}, headers=admin)
    assert off.json()["enabled"] is False
    assert off.json()["disabled_reason"].startswith("disabled by ")
    assert_problem(await client.post(f"/api/webhooks/{created['id']}/test", headers=admin), 409)
    on = await client.patch(f"/api/webhooks/{created['id']}", json={"enabled": True}, headers=admin)
    assert on.json()["enabled"] is True
    assert on.json()["disabled_reason"] is None


@pytest.mark.parametrize("role", ["manager", "employee"])
async def test_only_admins_reach_webhooks(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver, tokens: Any, role: str
) -> None:
    created = await subscribe(client, admin, receiver.url)
    other = tokens.headers(role)
    base = f"/api/webhooks/{created['id']}"
    calls = [
        ("POST", "/api/webhooks", {"url": receiver.url, "events": ["*"]}),
        ("GET", "/api/webhooks", None),
        ("GET", base, None),
        ("PATCH", base, {"description": "x"}),
        ("DELETE", base, None),
        ("POST", base + "/rotate-secret", None),
        ("POST", base + "/test", None),
        ("GET", base + "/deliveries", None),
        ("POST", base + f"/deliveries/{created['id']}/retry", None),
    ]
    for method, path, body in calls:
        response = await client.request(method, path, json=body, headers=other)
        assert_problem(response, 403)
    assert_problem(await client.get("/api/webhooks"), 401)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["*"]}, "url"),
        ({"url": "http://127.0.0.1:1/"}, "events"),
        ({"url": "http://127.0.0.1:1/", "events": []}, "events"),
        ({"url": "http://127.0.0.1:1/", "events": ["crm.customer.exploded"]}, "events.0"),
        ({"url": "http://127.0.0.1:1/", "events": ["*", "crm.*"]}, "events.1"),
        ({"url": "http://127.0.0.1:1/", "events": "crm.customer.*"}, "events"),
        ({"url": "ftp://127.0.0.1/", "events": ["*"]}, "url"),
        ({"url": "not a url", "events": ["*"]}, "url"),
        ({"url": "http://user:pw@127.0.0.1:1/", "events": ["*"]}, "url"),
        ({"url": "http://127.0.0.1:1/", "events": ["*"], "secret": "mine"}, "secret"),
        ({"url": "http://127.0.0.1:1/", "events": ["*"], "description": "x" * 501}, "description"),
    ],
)
async def test_bad_subscriptions_are_422_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, Any], field: str
) -> None:
    assert_problem(await client.post("/api/webhooks", json=body, headers=admin), 422, field)


async def test_bad_changes_and_queries_are_422_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver
) -> None:
    created = await subscribe(client, admin, receiver.url)
    base = f"/api/webhooks/{created['id']}"
    for body, field in (({"url": None}, "url"), ({"enabled": "yes"}, "enabled"), ({"events": ["nope"]}, "events.0")):
        assert_problem(await client.patch(base, json=body, headers=admin), 422, field)
    assert_problem(await client.get(base + "/deliveries?status=lost", headers=admin), 422, "status")
    assert_problem(await client.get(base + "/deliveries?cursor=zzz", headers=admin), 422, "cursor")
    assert_problem(await client.get(base + "/deliveries?limit=0", headers=admin), 422, "limit")
    assert_problem(await client.get("/api/webhooks/not-a-uuid", headers=admin), 422, "webhook_id")
    assert_problem(await client.post(base + "/deliveries/nope/retry", headers=admin), 422, "delivery_id")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://localhost:8080/hook",
    ],
)
async def test_private_addresses_are_refused_at_subscription(
    strict_client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], url: str
) -> None:
    body = assert_problem(
        await strict_client.post("/api/webhooks", json={"url": url, "events": ["*"]}, headers=admin), 422, "url"
    )
    assert "address" in body["detail"]
    assert await db.fetchval("SELECT count(*) FROM webhook_subscriptions") == 0


async def test_a_public_address_is_accepted_and_a_private_one_refused_on_change(
    strict_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await subscribe(strict_client, admin, "https://93.184.216.34/hook")
    response = await strict_client.patch(
        f"/api/webhooks/{created['id']}", json={"url": "http://10.0.0.1/"}, headers=admin
    )
    assert_problem(response, 422, "url")
