"""Statistics read from the trigger-maintained roll-ups must equal a direct count, always.

Interactions are written through the API (so the triggers run), concurrently, then edited
and deleted; every answer is compared with a GROUP BY over the interactions table itself,
for ranges that cut days in the middle, start or end at midnight, or have no bound.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from tests.helpers import TokenFactory, create_customer
from tests.interactions.support import create_interaction

TYPES = ["call", "email", "meeting", "note", "task"]
BASE = datetime(2025, 3, 1, tzinfo=UTC)


async def _truth(
    db: asyncpg.Connection[Any], start: datetime | None, end: datetime | None, user: uuid.UUID | None
) -> dict[str, Any]:
    rows = await db.fetch(
        """
        SELECT type, to_char(date AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, user_id::text AS user_id, count(*) AS n
        FROM interactions
        WHERE ($1::timestamptz IS NULL OR date >= $1) AND ($2::timestamptz IS NULL OR date < $2)
          AND ($3::uuid IS NULL OR user_id = $3)
        GROUP BY 1, 2, 3
        """,
        start,
        end,
        user,
    )
    by_type = dict.fromkeys(TYPES, 0)
    by_date: dict[str, int] = {}
    by_user: dict[str, int] = {}
    for r in rows:
        by_type[r["type"]] += r["n"]
        by_date[r["day"]] = by_date.get(r["day"], 0) + r["n"]
        by_user[r["user_id"]] = by_user.get(r["user_id"], 0) + r["n"]
    return {"total": sum(by_type.values()), "byType": by_type, "byDate": by_date, "byUser": by_user}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_rollup_statistics_equal_a_direct_count(
    client: httpx.AsyncClient, tokens: TokenFactory, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    rng = random.Random(7)
    users = [uuid.uuid4() for _ in range(3)]
    headers = {u: tokens.headers("employee", user_id=u) for u in users}
    customer = await create_customer(client, admin)
    created = await asyncio.gather(
        *(
            create_interaction(
                client,
                headers[users[i % 3]],
                customer["id"],
                type=TYPES[i % 5],
                date=_iso(BASE + timedelta(hours=rng.randrange(0, 24 * 6), minutes=rng.randrange(60))),
            )
            for i in range(60)
        )
    )
    # Edits that move interactions between days and types, and deletes, also concurrently.
    await asyncio.gather(
        *(
            client.put(
                f"/api/interactions/{c['id']}",
                json={"date": _iso(BASE + timedelta(days=rng.randrange(7), hours=5)), "type": "task"},
                headers=admin,
            )
            for c in created[:12]
        ),
        *(client.delete(f"/api/interactions/{c['id']}", headers=admin) for c in created[12:20]),
    )

    ranges: list[tuple[datetime | None, datetime | None]] = [(None, None)]
    for _ in range(12):
        a = BASE + timedelta(hours=rng.randrange(-12, 24 * 7), minutes=rng.choice([0, 17]))
        b = a + timedelta(hours=rng.randrange(1, 24 * 4))
        ranges += [(a, b), (a, None), (None, b)]
    ranges += [(BASE + timedelta(days=1), BASE + timedelta(days=3))]  # whole days only
    await _assert_ranges_exact(client, admin, db, ranges, users[0])
    await _assert_all_time_exact(client, admin, db)


async def _assert_ranges_exact(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Connection[Any],
    ranges: list[tuple[datetime | None, datetime | None]],
    user: uuid.UUID,
) -> None:
    """Every range's statistics, of everyone and of `user`, equal the direct count."""
    for start, end in ranges:
        for who in (None, user):
            params = {}
            if start is not None:
                params["startDate"] = _iso(start)
            if end is not None:
                # The API's explicit end is inclusive; ask for the instant just before `end`.
                params["endDate"] = _iso(end - timedelta(microseconds=1))
            if who is not None:
                params["userId"] = str(who)
            response = await client.get("/api/interactions/statistics", params=params, headers=admin)
            assert response.status_code == 200, response.text
            assert response.json() == await _truth(db, start, end, who), params


# The all-time document as the statement over day totals rendered it before the months were
# pre-rendered, counted here from the interactions themselves: the poll must keep these bytes.
_REFERENCE_DOCUMENT = """
WITH counted AS (
    SELECT type, (date AT TIME ZONE 'UTC')::date AS day, user_id::text AS key FROM interactions
), types AS (
    SELECT t.type, t.pos, (SELECT count(*) FROM counted WHERE counted.type = t.type) AS n
    FROM unnest($1::text[]) WITH ORDINALITY AS t(type, pos)
), days AS (
    SELECT day, count(*) AS n FROM counted GROUP BY day
), users AS (
    SELECT key, count(*) AS n FROM counted GROUP BY key
)
SELECT json_build_object(
    'total', (SELECT sum(n) FROM types),
    'byType', (SELECT json_object_agg(type, n ORDER BY pos) FROM types),
    'byDate', coalesce((SELECT json_object_agg(to_char(day, 'YYYY-MM-DD'), n ORDER BY day) FROM days), '{}'),
    'byUser', coalesce((SELECT json_object_agg(key, n ORDER BY n DESC, key COLLATE "C") FROM users), '{}')
)::text
"""


async def _assert_all_time_exact(client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]) -> None:
    """The all-time document is byte for byte the reference, and every month's fragment holds its true days."""
    response = await client.get("/api/interactions/statistics", headers=admin)
    assert response.status_code == 200, response.text
    assert response.content == (await db.fetchval(_REFERENCE_DOCUMENT, TYPES)).encode()
    assert response.json() == await _truth(db, None, None, None)
    # A range with a bound that excludes nothing is read by the other statement: same bytes.
    since_year_one = await client.get(
        "/api/interactions/statistics", params={"startDate": "0001-01-01T00:00:00Z"}, headers=admin
    )
    assert since_year_one.content == response.content

    by_day = await db.fetch(
        "SELECT (date AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM interactions GROUP BY 1 ORDER BY 1"
    )
    true_months: dict[str, dict[str, int]] = {}
    for r in by_day:
        true_months.setdefault(r["day"].strftime("%Y-%m-01"), {})[r["day"].isoformat()] = r["n"]
    stored = await db.fetch("SELECT to_char(month, 'YYYY-MM-DD') AS month, days FROM interaction_month_days")
    fragments = {r["month"]: r["days"] for r in stored}
    assert {m for m, days in fragments.items() if days} == set(true_months)
    for month, days in true_months.items():
        parsed = json.loads("{" + fragments[month] + "}")
        assert parsed == days, month
        assert list(parsed) == sorted(parsed), month


async def test_month_fragments_follow_writes_across_months(
    client: httpx.AsyncClient, tokens: TokenFactory, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    rng = random.Random(11)
    users = [uuid.uuid4() for _ in range(4)]
    customer = await create_customer(client, admin)
    # Around three month ends, some written with offsets that put them in the next UTC month.
    moments = [
        "2024-12-31T23:59:59Z",
        "2024-12-31T22:30:00-02:00",
        "2025-01-01T00:00:00Z",
        "2025-01-15T12:00:00+01:00",
        "2025-01-31T23:30:00-05:00",
        "2025-02-01T00:30:00+02:00",
        "2025-02-14T09:00:00Z",
        "2025-02-28T23:59:59Z",
        "2025-03-01T00:00:00Z",
        "2025-03-31T10:00:00Z",
    ]
    created = await asyncio.gather(
        *(
            create_interaction(
                client,
                tokens.headers("employee", user_id=users[i % 4]),
                customer["id"],
                type=TYPES[i % 5],
                date=moments[i % len(moments)],
            )
            for i in range(40)
        )
    )
    await _assert_all_time_exact(client, admin, db)

    february = [c for c in created if c["date"].startswith("2025-02")]
    assert february, "the data must put some interactions in February (UTC)"
    others = [c for c in created if not c["date"].startswith("2025-02")]
    # Empty February entirely (moved out to other months or deleted), and move others about,
    # concurrently: the document must join January and March with no empty entry between.
    writes = await asyncio.gather(
        *(
            client.put(
                f"/api/interactions/{c['id']}",
                json={"date": rng.choice(["2025-01-20T05:00:00Z", "2025-04-02T05:00:00Z"]), "type": "note"},
                headers=admin,
            )
            for c in february[::2]
        ),
        *(client.delete(f"/api/interactions/{c['id']}", headers=admin) for c in february[1::2]),
        *(
            client.put(f"/api/interactions/{c['id']}", json={"date": "2024-11-30T12:00:00Z"}, headers=admin)
            for c in others[:5]
        ),
    )
    assert all(w.is_success for w in writes), [w.text for w in writes if not w.is_success]
    assert await db.fetchval("SELECT days FROM interaction_month_days WHERE month = '2025-02-01'") == ""
    await _assert_all_time_exact(client, admin, db)

    # Every interaction gone: no days left, the byDate object is empty.
    await asyncio.gather(*(client.delete(f"/api/interactions/{c['id']}", headers=admin) for c in created))
    await _assert_all_time_exact(client, admin, db)
    assert (await client.get("/api/interactions/statistics", headers=admin)).json()["byDate"] == {}


_INSERT = """
INSERT INTO interactions (customer_id, user_id, type, subject, date)
SELECT $1, $2, 'call', 'direct', moment FROM unnest($3::timestamptz[]) AS moment
"""


async def test_concurrent_writers_of_one_month_lose_no_day(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], database_url: str
) -> None:
    customer = uuid.UUID((await create_customer(client, admin))["id"])
    user = uuid.uuid4()
    first, second = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        # Twice: a month that has no row yet, then the same month again. The second writer
        # changes another day of the month while the first has not committed; it must render
        # the month after the first commits, with both days.
        for days in (("2025-06-03", "2025-06-20"), ("2025-06-11", "2025-06-03")):
            await first.execute("BEGIN")
            await first.execute(_INSERT, customer, user, [datetime.fromisoformat(f"{days[0]}T10:00:00+00:00")])
            await second.execute("BEGIN")
            blocked = asyncio.create_task(
                second.execute(_INSERT, customer, user, [datetime.fromisoformat(f"{days[1]}T10:00:00+00:00")])
            )
            await asyncio.sleep(0.2)
            assert not blocked.done(), "the second writer must wait for the month"
            await first.execute("COMMIT")
            await blocked
            await second.execute("COMMIT")
            await _assert_all_time_exact(client, admin, db)
    finally:
        await first.close()
        await second.close()


async def test_multi_row_statements_and_the_rebuild_keep_months_exact(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = uuid.UUID((await create_customer(client, admin))["id"])
    users = [uuid.uuid4() for _ in range(3)]
    moments = [BASE + timedelta(days=d, hours=h) for d in range(-40, 70, 3) for h in (1, 23)]
    # One transaction, many rows a statement: the trigger re-renders a month once per row.
    async with db.transaction():
        for i, user in enumerate(users):
            await db.execute(_INSERT, customer, user, moments[i::3])
        await db.execute("UPDATE interactions SET date = date + interval '1 month 1 hour' WHERE user_id = $1", users[0])
        await db.execute("DELETE FROM interactions WHERE user_id = $1 AND date < $2", users[1], BASE)
    await _assert_all_time_exact(client, admin, db)

    # A bulk load writes with the triggers off (see crm.demo.load), leaving every roll-up stale.
    await db.execute("SET session_replication_role = replica")
    await db.execute(_INSERT, customer, users[2], [BASE + timedelta(days=200 + d) for d in range(5)])
    await db.execute("DELETE FROM interactions WHERE user_id = $1", users[1])
    await db.execute("RESET session_replication_role")
    stale = await client.get("/api/interactions/statistics", headers=admin)
    assert stale.json() != await _truth(db, None, None, None), "the writes above must bypass the triggers"

    await db.execute("SELECT crm_rebuild_aggregates()")
    await _assert_all_time_exact(client, admin, db)
    assert await db.fetchval("SELECT count(*) FROM interaction_month_days WHERE days = ''") == 0


async def test_opposite_moves_between_two_months_do_not_deadlock(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], database_url: str
) -> None:
    customer = uuid.UUID((await create_customer(client, admin))["id"])
    user = uuid.uuid4()
    january, february = datetime(2025, 1, 20, 8, tzinfo=UTC), datetime(2025, 2, 20, 8, tzinfo=UTC)
    ids = [r["id"] for r in await db.fetch(_INSERT + " RETURNING id", customer, user, [january, february] * 4)]
    writers = [await asyncpg.connect(database_url) for _ in ids]

    async def swing(writer: asyncpg.Connection[Any], id_: uuid.UUID) -> None:
        # Each move locks the month it leaves and the month it enters: half the writers go
        # January -> February while the other half go the other way.
        for _ in range(25):
            await writer.execute(
                "UPDATE interactions SET date = CASE WHEN date < $2::timestamptz THEN $3::timestamptz"
                " ELSE $4::timestamptz END WHERE id = $1",
                id_,
                datetime(2025, 2, 1, tzinfo=UTC),
                february,
                january,
            )

    try:
        await asyncio.gather(*(swing(w, i) for w, i in zip(writers, ids, strict=True)))
    finally:
        for writer in writers:
            await writer.close()
    await _assert_all_time_exact(client, admin, db)


async def test_ranges_over_whole_and_partial_months_count_users_exactly(
    client: httpx.AsyncClient, tokens: TokenFactory, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    """byUser of a long range takes whole months from the month roll-up and the days at its ends
    from the daily one: each way of cutting months must still equal a direct count."""
    rng = random.Random(11)
    customer = uuid.UUID((await create_customer(client, admin))["id"])
    users = [uuid.uuid4() for _ in range(4)]
    moments = [BASE + timedelta(days=d, hours=rng.randrange(24)) for d in range(-70, 120, 2)]
    async with db.transaction():
        for i, user in enumerate(users):
            await db.execute(_INSERT, customer, user, moments[i::4])
        # Moves across months and deletes, through the trigger.
        await db.execute("UPDATE interactions SET date = date + interval '17 days' WHERE user_id = $1", users[0])
        await db.execute("DELETE FROM interactions WHERE user_id = $1 AND date < $2", users[1], BASE)

    def day(iso: str) -> datetime:
        return datetime.fromisoformat(iso).replace(tzinfo=UTC)

    ranges: list[tuple[datetime | None, datetime | None]] = [
        (day("2025-01-01"), day("2025-04-01")),  # whole months only
        (day("2025-01-15"), day("2025-04-20")),  # partial months at both ends
        (day("2025-02-03"), day("2025-02-25")),  # inside one month
        (day("2025-02-10"), day("2025-03-05")),  # two partial months, no whole one
        (day("2025-01-31"), day("2025-03-01")),  # one whole month and one day before it
        (day("2025-03-01"), None),
        (None, day("2025-02-14")),
        (day("2025-01-10") + timedelta(hours=7), day("2025-05-02") + timedelta(hours=3)),  # with edge hours
    ]

    await _assert_ranges_exact(client, admin, db, ranges, users[2])
    months = await db.fetchval("SELECT count(*) FROM interaction_month_user_counts WHERE n <> 0")
    assert months > 10, "the month roll-up must hold the months written above"
    # The rebuild recounts the month roll-up too.
    await db.execute("UPDATE interaction_month_user_counts SET n = n + 5")
    await db.execute("SELECT crm_rebuild_aggregates()")
    await _assert_ranges_exact(client, admin, db, ranges, users[2])
