"""Deliveries to real receivers: signed (checked by the Standard Webhooks reference code), retried, bounded."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import asyncpg
import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.responses import Response

from crm.events.outbox import envelope
from tests.helpers import assert_problem, create_customer
from tests.webhooks.receiver import Receiver, Seen, endless, ok, slow, status
from tests.webhooks.test_subscriptions import subscribe


def verify(secret: str, seen: Seen) -> dict[str, Any]:
    verified: dict[str, Any] = Webhook(secret).verify(seen.body, seen.headers)
    return verified


async def deliveries(client: httpx.AsyncClient, admin: dict[str, str], webhook_id: str, query: str = "") -> list[Any]:
    response = await client.get(f"/api/webhooks/{webhook_id}/deliveries{query}", headers=admin)
    assert response.status_code == 200, response.text
    found: list[Any] = response.json()["deliveries"]
    return found


async def settled(
    client: httpx.AsyncClient, admin: dict[str, str], webhook_id: str, count: int, within: float = 15.0
) -> list[Any]:
    """The subscription's deliveries once `count` of them are no longer pending."""
    deadline = time.monotonic() + within
    while True:
        found = await deliveries(client, admin, webhook_id)
        if sum(d["status"] != "pending" for d in found) >= count:
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


async def test_a_change_is_delivered_signed_as_its_cloudevent(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver, db: asyncpg.Connection[Any]
) -> None:
    hook = await subscribe(client, admin, receiver.url + "/hook", "crm.customer.*")
    customer = await create_customer(client, admin)
    (seen,) = await receiver.wait_for(1)
    assert seen.path == "/hook"
    assert seen.headers["content-type"] == "application/cloudevents+json"
    row = await db.fetchrow("SELECT * FROM events WHERE customer_id = $1", customer["id"])
    assert row is not None
    # Exactly the outbox's envelope, and signed over exactly these bytes.
    assert json.loads(seen.body) == json.loads(json.dumps(envelope(dict(row)), default=str))
    assert verify(hook["secret"], seen)["type"] == "crm.customer.created"
    assert seen.headers["webhook-id"] == str(row["id"])
    assert abs(int(seen.headers["webhook-timestamp"]) - time.time()) < 30
    with pytest.raises(WebhookVerificationError):
        verify("whsec_" + "QUJD" * 8, seen)
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(seen.body + b" ", seen.headers)

    (delivery,) = await settled(client, admin, hook["id"], 1)
    assert delivery["status"] == "succeeded"
    assert delivery["webhook_id"] == str(row["id"])
    assert delivery["customer_id"] == customer["id"]
    assert delivery["sequence"] == 1
    (attempt,) = delivery["attempts"]
    assert attempt["status_code"] == 200
    assert attempt["error"] is None
    assert attempt["next_attempt_at"] is None
    assert attempt["duration_ms"] >= 0


async def test_only_matching_enabled_subscriptions_get_deliveries_and_only_for_commits(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver, db: asyncpg.Connection[Any]
) -> None:
    every = await subscribe(client, admin, receiver.url + "/every", "*")
    created = await subscribe(client, admin, receiver.url + "/created", "crm.customer.created")
    contacts = await subscribe(client, admin, receiver.url + "/contacts", "crm.contact.*")
    off = await subscribe(client, admin, receiver.url + "/off", "*")
    await client.patch(f"/api/webhooks/{off['id']}", json={"enabled": False}, headers=admin)

    customer = await create_customer(client, admin)
    response = await client.put(f"/api/customers/{customer['id']}", json={"city": "Lviv"}, headers=admin)
    assert response.status_code == 200, response.text

    async def types(hook: dict[str, Any]) -> list[str]:
        rows = await db.fetch(
            "SELECT type FROM webhook_deliveries WHERE subscription_id = $1 ORDER BY sequence", hook["id"]
        )
        return [r["type"] for r in rows]

    assert await types(every) == ["crm.customer.created", "crm.customer.updated"]
    assert await types(created) == ["crm.customer.created"]
    assert await types(contacts) == []
    assert await types(off) == []

    # The deliveries are written with the events, in their transaction: none survive a rollback.
    before = await db.fetchval("SELECT count(*) FROM webhook_deliveries")
    insert = """
        INSERT INTO events (id, type, customer_id, subject, sequence, data)
        VALUES (gen_random_uuid(), 'crm.customer.updated', $1, $1, 99, '{}')
    """
    transaction = db.transaction()
    await transaction.start()
    await db.execute(insert, customer["id"])
    assert await db.fetchval("SELECT count(*) FROM webhook_deliveries") == before + 1
    await transaction.rollback()
    assert await db.fetchval("SELECT count(*) FROM webhook_deliveries") == before


async def test_after_a_rotation_both_secrets_sign_for_the_overlap(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver, db: asyncpg.Connection[Any]
) -> None:
    hook = await subscribe(client, admin, receiver.url, "crm.customer.*")
    old = hook["secret"]
    new = (await client.post(f"/api/webhooks/{hook['id']}/rotate-secret", headers=admin)).json()["secret"]
    customer = await create_customer(client, admin)
    (seen,) = await receiver.wait_for(1)
    assert len(seen.headers["webhook-signature"].split(" ")) == 2
    assert verify(new, seen)["customerid"] == customer["id"]
    assert verify(old, seen)["customerid"] == customer["id"]

    # The overlap is over (moved into the past rather than waited for): only the new one signs.
    await db.execute(
        "UPDATE webhook_subscriptions SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1",
        hook["id"],
    )
    await client.put(f"/api/customers/{customer['id']}", json={"city": "Odesa"}, headers=admin)
    _, later = await receiver.wait_for(2)
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    assert verify(new, later)["type"] == "crm.customer.updated"
    with pytest.raises(WebhookVerificationError):
        verify(old, later)


async def test_failed_attempts_are_retried_on_the_schedule_with_one_webhook_id(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver
) -> None:
    receiver.behaviour = status(500)
    hook = await subscribe(client, admin, receiver.url, "crm.customer.*")
    await create_customer(client, admin)
    seen = await receiver.wait_for(4, within=15)  # the first attempt and the schedule's three (1, 1, 1 s)
    assert len({s.headers["webhook-id"] for s in seen}) == 1
    gaps = [b.at - a.at for a, b in itertools.pairwise(seen)]
    assert all(gap >= 0.9 for gap in gaps), gaps
    for s in seen:
        verify(hook["secret"], s)

    (delivery,) = await settled(client, admin, hook["id"], 1)
    assert delivery["status"] == "failed"
    assert delivery["next_attempt_at"] is None
    attempts = delivery["attempts"]
    assert [a["number"] for a in attempts] == [1, 2, 3, 4]
    assert {a["status_code"] for a in attempts} == {500}
    assert all(a["error"] == "answered 500" for a in attempts)
    assert all(a["next_attempt_at"] is not None for a in attempts[:3])
    assert attempts[3]["next_attempt_at"] is None
    await asyncio.sleep(1.5)
    assert len(receiver.seen()) == 4, "a failed delivery is not tried again"


async def test_retry_after_on_429_and_503_is_honoured(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver
) -> None:
    answers = iter([status(429, **{"Retry-After": "3"}), status(503, **{"Retry-After": "2"})])

    async def behaviour(seen: Seen) -> Response:
        return await next(answers, ok)(seen)

    receiver.behaviour = behaviour
    hook = await subscribe(client, admin, receiver.url, "crm.customer.*")
    await create_customer(client, admin)
    first, second, third = await receiver.wait_for(3, within=15)
    # The schedule says 1 s each time; the receiver asked for 3, then 2.
    assert second.at - first.at >= 2.9
    assert third.at - second.at >= 1.9
    (delivery,) = await settled(client, admin, hook["id"], 1)
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [429, 503, 200]


async def test_redirects_are_not_followed(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver, second_receiver: Receiver
) -> None:
    receiver.behaviour = status(307, Location=second_receiver.url + "/elsewhere")
    hook = await subscribe(client, admin, receiver.url, "crm.customer.*")
    await create_customer(client, admin)
    await receiver.wait_for(2, within=10)
    delivery = (await deliveries(client, admin, hook["id"]))[0]
    attempt = delivery["attempts"][0]
    assert attempt["status_code"] == 307
    assert "redirect not followed" in attempt["error"]
    assert second_receiver.seen() == []


async def test_an_endless_answer_is_read_up_to_64_kib_only(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver
) -> None:
    receiver.behaviour = endless()
    hook = await subscribe(client, admin, receiver.url, "crm.customer.*")
    await create_customer(client, admin)
    # Reading it all would never end; the 2 s timeout would make the attempt a failure.
    (delivery,) = await settled(client, admin, hook["id"], 1, within=10)
    assert delivery["status"] == "succeeded", delivery
    (attempt,) = delivery["attempts"]
    assert attempt["duration_ms"] < 2000
    assert len(attempt["response"]) == 1024


async def test_an_answer_slower_than_the_timeout_is_a_failure(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver
) -> None:
    receiver.behaviour = slow(4)
    hook = await subscribe(client, admin, receiver.url, "crm.customer.*")
    await create_customer(client, admin)
    await receiver.wait_for(1)
    # In flight: a manual retry would race the attempt under way.
    (in_flight,) = await deliveries(client, admin, hook["id"])
    retry = await client.post(f"/api/webhooks/{hook['id']}/deliveries/{in_flight['id']}/retry", headers=admin)
    assert_problem(retry, 409)
    deadline = time.monotonic() + 10
    while not (found := await deliveries(client, admin, hook["id"]))[0]["attempts"]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    attempt = found[0]["attempts"][0]
    assert attempt["status_code"] is None
    assert attempt["error"] == "no complete answer within 2 s"
    assert 1900 <= attempt["duration_ms"] < 3500


async def test_a_test_event_is_sent_now_in_no_customer_queue(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver
) -> None:
    hook = await subscribe(client, admin, receiver.url, "crm.customer.created")
    response = await client.post(f"/api/webhooks/{hook['id']}/test", headers=admin)
    assert response.status_code == 202, response.text
    made = response.json()
    assert made["type"] == "crm.webhook.test"
    assert made["customer_id"] is None
    assert made["sequence"] is None
    (seen,) = await receiver.wait_for(1)
    event = verify(hook["secret"], seen)
    assert event["type"] == "crm.webhook.test"
    assert event["id"] == made["webhook_id"] == seen.headers["webhook-id"]
    assert "sequence" not in event
    assert event["subject"] == hook["id"]
    (listed,) = await settled(client, admin, hook["id"], 1)
    assert listed["id"] == made["id"]
    assert listed["status"] == "succeeded"


async def test_deliveries_are_listed_by_status_in_pages_and_a_failed_one_sent_again(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver, db: asyncpg.Connection[Any]
) -> None:
    receiver.behaviour = status(500)
    hook = await subscribe(client, admin, receiver.url, "crm.customer.*")
    customer = await create_customer(client, admin)
    await settled(client, admin, hook["id"], 1)
    receiver.behaviour = ok
    for city in ("Lviv", "Dnipro"):
        await client.put(f"/api/customers/{customer['id']}", json={"city": city}, headers=admin)
    await settled(client, admin, hook["id"], 3)

    (failed,) = await deliveries(client, admin, hook["id"], "?status=failed")
    assert failed["sequence"] == 1
    assert len(failed["attempts"]) == 4
    succeeded = await deliveries(client, admin, hook["id"], "?status=succeeded")
    assert [d["sequence"] for d in succeeded] == [3, 2]  # newest first; after the head failed, the next went

    first = await client.get(f"/api/webhooks/{hook['id']}/deliveries?limit=2", headers=admin)
    page = first.json()
    assert [d["sequence"] for d in page["deliveries"]] == [3, 2]
    assert page["pagination"]["hasNext"] is True
    cursor = page["pagination"]["nextCursor"]
    rest = (await client.get(f"/api/webhooks/{hook['id']}/deliveries?limit=2&cursor={cursor}", headers=admin)).json()
    assert [d["sequence"] for d in rest["deliveries"]] == [1]
    assert rest["pagination"]["hasNext"] is False
    assert rest["pagination"]["nextCursor"] is None

    count = len(receiver.seen())
    response = await client.post(f"/api/webhooks/{hook['id']}/deliveries/{failed['id']}/retry", headers=admin)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending"
    again = (await receiver.wait_for(count + 1))[-1]
    assert again.headers["webhook-id"] == failed["webhook_id"]
    assert verify(hook["secret"], again)["sequence"] == "1"
    deadline = time.monotonic() + 10
    while (
        row := await db.fetchrow("SELECT status, attempts FROM webhook_deliveries WHERE id = $1", failed["id"])
    ) and (row["status"] != "succeeded"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert row["attempts"] == 5

    other = await subscribe(client, admin, receiver.url)
    path = f"/api/webhooks/{other['id']}/deliveries/{failed['id']}/retry"
    assert_problem(await client.post(path, headers=admin), 404)


async def test_a_subscription_failing_every_delivery_for_5_days_is_disabled(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver, db: asyncpg.Connection[Any]
) -> None:
    receiver.behaviour = status(500)
    hook = await subscribe(client, admin, receiver.url, "crm.customer.*")
    customer = await create_customer(client, admin)
    await receiver.wait_for(1)
    deadline = time.monotonic() + 5
    while await db.fetchval("SELECT failing_since FROM webhook_subscriptions WHERE id = $1", hook["id"]) is None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert (await client.get(f"/api/webhooks/{hook['id']}", headers=admin)).json()["enabled"] is True

    # Failing since 6 days (moved, not waited for): the next failure disables it.
    await db.execute(
        "UPDATE webhook_subscriptions SET failing_since = now() - interval '6 days' WHERE id = $1", hook["id"]
    )
    deadline = time.monotonic() + 10
    while (shown := (await client.get(f"/api/webhooks/{hook['id']}", headers=admin)).json())["enabled"]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert shown["disabled_reason"].startswith("every delivery failed since ")
    assert shown["disabled_at"] is not None

    # Disabled: nothing more is sent, and new changes make no deliveries for it.
    sent = len(receiver.seen())
    await client.put(f"/api/customers/{customer['id']}", json={"city": "Lviv"}, headers=admin)
    await asyncio.sleep(1.5)
    assert len(receiver.seen()) == sent
    assert await db.fetchval("SELECT count(*) FROM webhook_deliveries WHERE subscription_id = $1", hook["id"]) == 1

    # Resumed: the pending delivery goes again.
    receiver.behaviour = ok
    resumed = await client.patch(f"/api/webhooks/{hook['id']}", json={"enabled": True}, headers=admin)
    assert resumed.json()["failing_since"] is None
    await receiver.wait_for(sent + 1)
    (delivery,) = await settled(client, admin, hook["id"], 1)
    assert delivery["status"] == "succeeded"


async def test_a_success_clears_the_failing_streak(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver, db: asyncpg.Connection[Any]
) -> None:
    answers = iter([status(500)])

    async def behaviour(seen: Seen) -> Response:
        return await next(answers, ok)(seen)

    receiver.behaviour = behaviour
    hook = await subscribe(client, admin, receiver.url, "crm.customer.*")
    await create_customer(client, admin)
    (delivery,) = await settled(client, admin, hook["id"], 1)
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    assert await db.fetchval("SELECT failing_since FROM webhook_subscriptions WHERE id = $1", hook["id"]) is None


async def test_completed_deliveries_past_their_retention_are_purged(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver, db: asyncpg.Connection[Any]
) -> None:
    hook = await subscribe(client, admin, receiver.url, "crm.customer.*")
    customer = await create_customer(client, admin)
    await client.put(f"/api/customers/{customer['id']}", json={"city": "Lviv"}, headers=admin)
    await settled(client, admin, hook["id"], 2)
    await db.execute("UPDATE webhook_deliveries SET completed_at = now() - interval '31 days' WHERE sequence = 1")
    # A pending one, however old, stays: it has not been delivered.
    await db.execute(
        "INSERT INTO webhook_deliveries (subscription_id, event_id, type, status, created_at, next_attempt_at)"
        " VALUES ($1, gen_random_uuid(), 'crm.customer.updated', 'pending', now() - interval '40 days',"
        " now() + interval '1 day')",
        hook["id"],
    )
    assert await app.state.webhook_dispatcher.purge() == 1
    left = await db.fetch("SELECT sequence, status FROM webhook_deliveries ORDER BY position")
    assert [(r["sequence"], r["status"]) for r in left] == [(2, "succeeded"), (None, "pending")]
    assert await db.fetchval("SELECT count(*) FROM webhook_attempts") == 1
