"""GET /api/interactions/statistics on known data: three users, two customers, several UTC days."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.helpers import TokenFactory, assert_problem, create_customer
from tests.interactions.support import create_interaction

NO_TYPES = {"call": 0, "email": 0, "meeting": 0, "note": 0, "task": 0}


async def _stats(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = await client.get("/api/interactions/statistics", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"total", "byType", "byDate", "byUser"}
    assert list(body["byDate"]) == sorted(body["byDate"]), "byDate must be ascending"
    assert list(body["byUser"].values()) == sorted(body["byUser"].values(), reverse=True), "byUser: largest first"
    assert sum(body["byType"].values()) == sum(body["byDate"].values()) == sum(body["byUser"].values()) == body["total"]
    return body


async def test_statistics_counts(client: httpx.AsyncClient, tokens: TokenFactory, admin: dict[str, str]) -> None:
    ann, bob, cat = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    headers = {u: tokens.headers("employee", user_id=u) for u in (ann, bob, cat)}
    acme = await create_customer(client, admin)
    globex = await create_customer(client, admin)
    known = [
        (ann, acme, "call", "2025-05-01T09:00:00Z"),
        # 23:30 at -02:00 is already the next UTC day.
        (ann, acme, "email", "2025-05-01T23:30:00-02:00"),
        (ann, globex, "call", "2025-05-02T10:00:00Z"),
        (bob, acme, "meeting", "2025-05-03T00:00:00Z"),
        (bob, globex, "call", "2025-05-03T23:59:59Z"),
        (bob, globex, "note", "2025-05-05T12:00:00+05:00"),
        (cat, acme, "call", "2025-04-30T23:59:59Z"),
        (cat, globex, "email", "2025-06-01T00:00:00Z"),
    ]
    for user, customer, type_, date in known:
        await create_interaction(client, headers[user], customer["id"], type=type_, date=date)

    everything = await _stats(client, admin)
    assert everything == {
        "total": 8,
        "byType": {"call": 4, "email": 2, "meeting": 1, "note": 1, "task": 0},
        "byDate": {
            "2025-04-30": 1,
            "2025-05-01": 1,
            "2025-05-02": 2,
            "2025-05-03": 2,
            "2025-05-05": 1,
            "2025-06-01": 1,
        },
        "byUser": {str(ann): 3, str(bob): 3, str(cat): 2},
    }
    assert list(everything["byType"]) == ["call", "email", "meeting", "note", "task"]
    # The poll's bytes, spacing included: clients and caches downstream see exactly these.
    first, second = sorted((str(ann), str(bob)))
    all_time = await client.get("/api/interactions/statistics", headers=admin)
    assert (
        all_time.content
        == (
            '{"total" : 8, "byType" : { "call" : 4, "email" : 2, "meeting" : 1, "note" : 1, "task" : 0 }, '
            '"byDate" : { "2025-04-30" : 1, "2025-05-01" : 1, "2025-05-02" : 2, "2025-05-03" : 2, '
            '"2025-05-05" : 1, "2025-06-01" : 1 }, '
            f'"byUser" : {{ "{first}" : 3, "{second}" : 3, "{cat}" : 2 }}}}'
        ).encode()
    )

    in_range = await _stats(client, admin, startDate="2025-05-01", endDate="2025-05-03")
    assert in_range == {
        "total": 5,
        "byType": {**NO_TYPES, "call": 3, "email": 1, "meeting": 1},
        "byDate": {"2025-05-01": 1, "2025-05-02": 2, "2025-05-03": 2},
        "byUser": {str(ann): 3, str(bob): 2},
    }
    assert list(in_range["byUser"]) == [str(ann), str(bob)]

    bobs = await _stats(client, admin, userId=str(bob))
    assert (bobs["total"], bobs["byUser"]) == (3, {str(bob): 3})
    assert bobs["byType"] == {**NO_TYPES, "call": 1, "meeting": 1, "note": 1}

    at_acme = await _stats(client, admin, customerId=acme["id"])
    assert at_acme["total"] == 4
    assert at_acme["byUser"] == {str(ann): 2, str(bob): 1, str(cat): 1}
    assert at_acme["byDate"] == {"2025-04-30": 1, "2025-05-01": 1, "2025-05-02": 1, "2025-05-03": 1}

    narrow = await _stats(client, admin, userId=str(ann), customerId=globex["id"], startDate="2025-05-02T10:00:00Z")
    assert narrow == {
        "total": 1,
        "byType": {**NO_TYPES, "call": 1},
        "byDate": {"2025-05-02": 1},
        "byUser": {str(ann): 1},
    }

    # An employee may read statistics of everyone.
    assert (await _stats(client, headers[cat]))["total"] == 8


async def test_statistics_when_empty(client: httpx.AsyncClient, employee: dict[str, str]) -> None:
    assert await _stats(client, employee) == {"total": 0, "byType": NO_TYPES, "byDate": {}, "byUser": {}}
    response = await client.get("/api/interactions/statistics", headers=employee)
    assert response.content == (
        b'{"total" : 0, "byType" : { "call" : 0, "email" : 0, "meeting" : 0, "note" : 0, "task" : 0 }, '
        b'"byDate" : {}, "byUser" : {}}'
    )


async def test_statistics_rejects_bad_parameters(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    cases = [
        ({"startDate": "2025-05-02", "endDate": "2025-05-01"}, "startDate"),
        ({"startDate": "May 1st"}, "startDate"),
        ({"endDate": "2025-02-29"}, "endDate"),
        ({"userId": "ann"}, "userId"),
        ({"customerId": "acme"}, "customerId"),
    ]
    for params, field in cases:
        response = await client.get("/api/interactions/statistics", params=params, headers=admin)
        assert response.status_code == 422, (params, response.text)
        assert_problem(response, 422, field)
