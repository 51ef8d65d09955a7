"""The relay's status numbers, the retention purge, and erasure reaching the kept events.

The app's own relay is off here, so the numbers are the test's to control.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm.config import Settings
from crm.events import outbox
from crm.events.relay import Relay, purge
from crm.observability import metrics
from tests.auth.support import capture_logs
from tests.helpers import create_customer


@pytest.fixture
def relay_enabled() -> bool:
    return False


async def test_the_status_shows_the_backlog_its_age_and_the_leadership(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], settings: Settings, database_url: str
) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    await asyncio.sleep(0.2)
    waiting = (await client.get("/api/events/status", headers=admin)).json()
    oldest = await db.fetchval("SELECT min(time) FROM events")
    assert waiting["backlog"] == 2
    assert waiting["oldest_unpublished_age_seconds"] >= 0.2
    assert waiting["oldest_unpublished_at"] == oldest.isoformat().replace("+00:00", "Z")
    assert waiting["last_published_at"] is None
    assert waiting["leader"] is False
    assert waiting["broker"] == "rabbitmq"
    assert waiting["exchange"] == settings.events_exchange
    assert waiting["retention_days"] == 7

    relay = Relay(settings, database_url)
    relay.start()
    try:
        await asyncio.wait_for(relay.became_leader.wait(), 10)
        deadline = asyncio.get_running_loop().time() + 10
        while (figures := (await client.get("/api/events/status", headers=admin)).json())["backlog"]:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        assert figures["leader"] is True
        assert figures["oldest_unpublished_age_seconds"] is None
        assert figures["last_published_at"] is not None
        assert customer["id"]
    finally:
        await relay.stop()
    assert (await client.get("/api/events/status", headers=admin)).json()["leader"] is False


async def test_the_leader_publishes_the_backlog_gauges(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings, database_url: str
) -> None:
    await create_customer(client, admin)
    await create_customer(client, admin)
    # A relay whose broker never answers: it leads, publishes nothing, and reports the backlog.
    relay = Relay(settings.model_copy(update={"events_amqp_url": "amqp://guest:guest@127.0.0.1:1/"}), database_url)
    relay.start()
    try:
        await asyncio.wait_for(relay.became_leader.wait(), 10)
        await asyncio.sleep(0.3)
        assert metrics.EVENTS_BACKLOG._value.get() == 2  # type: ignore[attr-defined]
        assert metrics.EVENTS_OLDEST_AGE._value.get() > 0  # type: ignore[attr-defined]
        scraped = (await client.get("/metrics")).text
        assert "crm_events_backlog 2.0" in scraped
    finally:
        await relay.stop()
    assert metrics.EVENTS_BACKLOG._value.get() == 0  # type: ignore[attr-defined]


async def test_retention_purges_events_published_before_the_window_and_never_unpublished_ones(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], settings: Settings, database_url: str
) -> None:
    customers = [await create_customer(client, admin) for _ in range(4)]
    ids = [uuid.UUID(c["id"]) for c in customers]
    # 0 and 1 were published 8 days ago, 2 yesterday, 3 never (and was written 30 days ago).
    await db.execute(
        "UPDATE events SET published_at = now() - interval '8 days',"
        " feed_position = nextval('events_feed_position_seq') WHERE customer_id = ANY($1)",
        ids[:2],
    )
    await db.execute(
        "UPDATE events SET published_at = now() - interval '1 day',"
        " feed_position = nextval('events_feed_position_seq') WHERE customer_id = $1",
        ids[2],
    )
    await db.execute("UPDATE events SET time = now() - interval '30 days' WHERE customer_id = $1", ids[3])

    # An old event a webhook delivery still waits to send stays until it is sent.
    waiting = await db.fetchrow("SELECT id, type FROM events WHERE customer_id = $1", ids[1])
    subscription = await db.fetchval(
        "INSERT INTO webhook_subscriptions (url, events, secret) VALUES ('http://127.0.0.1:9/', '{*}', 'whsec_x')"
        " RETURNING id"
    )
    await db.execute(
        "INSERT INTO webhook_deliveries (subscription_id, event_id, type, customer_id, sequence)"
        " VALUES ($1, $2, $3, $4, 1)",
        subscription,
        waiting["id"],
        waiting["type"],
        ids[1],
    )

    # In batches: one event at a time here.
    assert await purge(db, 7 * 86_400, batch=1) == 1
    assert await purge(db, 7 * 86_400, batch=1) == 0
    left = {r["customer_id"] for r in await db.fetch("SELECT customer_id FROM events")}
    assert left == set(ids[1:])
    await db.execute("UPDATE webhook_deliveries SET status = 'succeeded' WHERE event_id = $1", waiting["id"])
    assert await purge(db, 7 * 86_400, batch=1) == 1
    left = {r["customer_id"] for r in await db.fetch("SELECT customer_id FROM events")}
    assert left == set(ids[2:])

    # The leading relay purges by itself (a shorter window: yesterday's go too), and publishes
    # the unpublished one rather than purging it.
    relay = Relay(settings.model_copy(update={"events_retention_days": 0.5}), database_url)
    relay.start()
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while await db.fetchval("SELECT count(*) FROM events WHERE customer_id = $1", ids[2]):
            assert asyncio.get_running_loop().time() < deadline, "not purged"
            await asyncio.sleep(0.05)
    finally:
        await relay.stop()
    kept = await db.fetch("SELECT customer_id, published_at FROM events")
    assert [r["customer_id"] for r in kept] == [ids[3]]
    assert kept[0]["published_at"] is not None


async def test_redact_nulls_every_personal_value_of_the_customers_kept_events(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Connection[Any],
    app: Any,
) -> None:
    customer = await create_customer(
        client, admin, first_name="Olena", contacts=[{"first_name": "Taras", "last_name": "Shevchenko"}]
    )
    other = await create_customer(client, admin, first_name="Keep")
    assert (await client.put(f"/api/customers/{customer['id']}", json={"notes": "secret"}, headers=admin)).is_success
    interaction = await client.post(
        "/api/interactions",
        json={"customer_id": customer["id"], "type": "call", "subject": "About Olena's debts"},
        headers=admin,
    )
    assert interaction.status_code == 201
    before = {r["id"]: json.loads(r["data"]) for r in await db.fetch("SELECT id, data::text AS data FROM events")}

    maker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    async with maker() as session, session.begin():
        assert await outbox.redact(session, uuid.UUID(customer["id"])) == 4

    rows = await db.fetch("SELECT id, customer_id, data::text AS data FROM events")
    for row in rows:
        data, old = json.loads(row["data"]), before[row["id"]]
        if str(row["customer_id"]) != customer["id"]:
            assert data == old  # another customer's events are untouched
            continue
        text = row["data"]
        for value in ("Olena", "Taras", "Shevchenko", "secret", "debts", customer["email"], customer["phone"]):
            assert value not in text, (value, text)
        # The same keys and field names; ids, actor and request id kept; every other value null.
        assert data.keys() == old.keys()
        assert data["actor"] == old["actor"]
        assert data["request_id"] == old["request_id"]
        (entity,) = set(data) - {"changes", "actor", "request_id"}
        assert data[entity].keys() == old[entity].keys()
        for name, value in data[entity].items():
            assert value == (old[entity][name] if name == "id" or name.endswith("_id") else None), name
        assert data["changes"].keys() == old["changes"].keys()
        for name, change in data["changes"].items():
            kept = name == "id" or name.endswith("_id")
            assert change == (old["changes"][name] if kept else {"old": None, "new": None}), name
    assert other["first_name"] in json.dumps([json.loads(r["data"]) for r in rows])


async def test_an_erasure_announces_only_ids_and_strips_the_kept_events(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(
        client,
        admin,
        first_name="Zenobia",
        tax_id="TAX-ZENOBIA-1",
        contacts=[{"first_name": "Ximena", "last_name": "Q"}],
    )
    cid = uuid.UUID(customer["id"])
    erased = await client.post(f"/api/customers/{cid}/erase", headers=admin)
    assert erased.status_code == 200, erased.text

    rows = await db.fetch("SELECT type, data::text AS data FROM events WHERE customer_id = $1 ORDER BY sequence", cid)
    assert [r["type"] for r in rows][-1] == "crm.customer.erased"
    last = json.loads(rows[-1]["data"])
    assert last["customer"] == {"id": str(cid)}
    assert last["changes"] == {}
    assert last["actor"]["role"] == "admin"
    for row in rows:
        for value in ("Zenobia", "Ximena", "TAX-ZENOBIA-1"):
            assert value not in row["data"], row["type"]
    created = json.loads(rows[0]["data"])
    # Shape and ids kept, every value of the person null.
    assert created["customer"]["id"] == str(cid)
    assert created["customer"]["first_name"] is None
    assert created["customer"]["tax_id"] is None
    assert created["changes"]["first_name"] == {"old": None, "new": None}
    assert created["actor"]["role"] == "admin"  # staff, not the person: kept


async def test_a_late_backlog_is_logged_and_a_growing_one_is_a_warning(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], settings: Settings, database_url: str
) -> None:
    relay = Relay(settings, database_url, publish_metrics=False)
    await create_customer(client, admin)
    with capture_logs() as logs:
        assert (await relay.observe(db)).count == 1  # not late yet: nothing said
        await db.execute("UPDATE events SET time = now() - interval '1 minute'")
        await relay.observe(db)
        await create_customer(client, admin)
        figures = await relay.observe(db)
    assert figures.count == 2
    assert figures.oldest_age is not None
    assert figures.oldest_age >= 60
    said = [(r["level"], r["backlog"], r["growing"]) for r in logs.records() if r.get("logger") == "crm.events.relay"]
    assert said == [("info", 1, False), ("warning", 2, True)]
