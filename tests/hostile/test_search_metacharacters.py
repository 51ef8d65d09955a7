"""SQL and LIKE metacharacters in every search: only literal matches, never a 5xx.

Each searchable kind of row (customers, contacts, interactions) carries the same texts full of
`%`, `_`, `\\`, quotes, SQL and odd Unicode, and every search endpoint must answer exactly the
rows whose searched fields contain the (whitespace-collapsed) query as a literal,
case-insensitive substring - computed here independently of the SQL.

Every query with no literal match is made of punctuation only: customer search falls back to
typo-tolerant word similarity when nothing matches literally, and pg_trgm sees no words in those.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

from tests.helpers import assert_problem, create_customer
from tests.hostile.support import assert_clean

NEEDLES = [
    "100% cotton",
    "100 cotton",
    "50%% off",
    "50% off",
    "a_b",
    "axb",
    "back\\slash",
    "backslash",
    "Robert'); DROP TABLE customers; -- ' OR 1=1 --",
    'O\'Brien & "Sons"',
    "[a-z].* $1 :name %s {0}",
    "caf\u00e9 composed",
    "cafe\u0301 decomposed",
    "\u6771\u4eac office",
    "\U0001f642\U0001f643 emoji",
    "\u00dcBER stra\u00dfe",
    "\u0130stanbul",
]

QUERIES = [
    "0%",
    "% c",
    "%%",
    "%_",
    "_%",
    "a_b",
    "_b",
    "k\\s",
    "\\\\",
    "\\%",
    "\\_",
    "' OR 1=1 --",
    "drop table customers; --",
    "1=1",
    "--",
    "'); DROP",
    '"Sons"',
    "O'B",
    ".*",
    "[a-z]",
    "$1",
    "%s",
    "{0}",
    ":name",
    "caf\u00e9",
    "e\u0301",
    "\u6771\u4eac",
    "\U0001f642\U0001f643",
    "\u00dcBER",
    "stra\u00dfe",
    "\u0130stanbul",
    "  a_b  ",  # trimmed
    "cotton",  # the control: plain text finds both cotton rows
]

TOO_SHORT = ["%", "_", "\\", "'", " % ", "\t_\n"]


def literal_matches(query: str, rows: dict[str, list[str | None]]) -> set[str]:
    needle = " ".join(query.split()).lower()
    return {row_id for row_id, fields in rows.items() if any(needle in (f or "").lower() for f in fields)}


def name_fields(first: str, last: str) -> list[str | None]:
    return [first, last, f"{first} {last}", f"{last} {first}"]


async def seed(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, dict[str, list[str | None]]]:
    """The searched fields of every row, by kind and id."""
    rows: dict[str, dict[str, list[str | None]]] = {"customers": {}, "contacts": {}, "interactions": {}}
    holder = await create_customer(client, admin, first_name="Holder", last_name="Plain", email=None, phone=None)
    rows["customers"][holder["id"]] = [*name_fields("Holder", "Plain"), None, None, None]
    for n, text in enumerate(NEEDLES):
        last = "Row" + "abcdefghijklmnopq"[n]
        customer = await create_customer(
            client, admin, first_name="Meta", last_name=last, email=None, phone=None, company_name=text
        )
        rows["customers"][customer["id"]] = [*name_fields("Meta", last), None, text, None]
        contact = await client.post(
            "/api/contacts",
            json={"customer_id": holder["id"], "first_name": "Meta", "last_name": last, "position": text[:100]},
            headers=admin,
        )
        assert contact.status_code == 201, contact.text
        rows["contacts"][contact.json()["id"]] = [*name_fields("Meta", last), None, text[:100]]
        interaction = await client.post(
            "/api/interactions", json={"customer_id": holder["id"], "type": "note", "subject": text}, headers=admin
        )
        assert interaction.status_code == 201, interaction.text
        rows["interactions"][interaction.json()["id"]] = [text, None]
    return rows


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {item["id"] for item in items}


def listed_ids(page: dict[str, Any]) -> set[str]:
    return ids(page["customers"])


async def test_metacharacters_match_only_literally(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    rows = await seed(client, admin)
    searches: list[tuple[str, str, str, Callable[[Any], set[str]]]] = [
        ("/api/customers/search", "query", "customers", ids),
        ("/api/customers", "search", "customers", listed_ids),
        ("/api/contacts/search", "query", "contacts", ids),
        ("/api/interactions/search", "query", "interactions", ids),
    ]
    empty = 0
    for query in QUERIES:
        for path, parameter, kind, found in searches:
            response = await client.get(path, params={parameter: query, "limit": "100"}, headers=admin)
            assert_clean(response)
            assert response.status_code == 200, (path, query, response.text)
            expected = literal_matches(query, rows[kind])
            assert found(response.json()) == expected, (path, query)
            if kind == "customers" and expected == set():
                # See the module docstring: only punctuation may find nothing.
                assert not any(c.isalnum() for c in query), query
            empty += not expected
    # The oracle is not vacuous: most queries find something, a few must find nothing.
    assert 0 < empty < len(QUERIES)
    assert len(literal_matches("cotton", rows["customers"])) == 2
    assert len(literal_matches("0%", rows["contacts"])) == 3
    # And nothing was executed as SQL.
    counts = [await db.fetchval(f"SELECT count(*) FROM {t}") for t in ("customers", "contacts", "interactions")]  # noqa: S608
    assert counts == [len(NEEDLES) + 1, len(NEEDLES), len(NEEDLES)]


async def test_one_character_of_punctuation_is_422_or_literal_never_a_match_all(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await create_customer(client, admin, company_name="100% cotton")
    starts = {
        "_": (await create_customer(client, admin, first_name="_Under"))["id"],
        "%": (await create_customer(client, admin, last_name="%Per"))["id"],
    }
    for query in TOO_SHORT:
        for path, parameter in [
            ("/api/customers/search", "query"),
            ("/api/contacts/search", "query"),
            ("/api/interactions/search", "query"),
        ]:
            response = await client.get(path, params={parameter: query}, headers=admin)
            assert_clean(response)
            assert_problem(response, 422, field=parameter)
        # The list answers one character (the search box's first keystroke) by prefix, literally.
        response = await client.get("/api/customers", params={"search": query}, headers=admin)
        assert_clean(response)
        assert response.status_code == 200, response.text
        expected = {starts[query.strip()]} if query.strip() in starts else set()
        assert {c["id"] for c in response.json()["customers"]} == expected, query
