"""Customer search's bounded tiers (crm.customers.search) against a brute-force ranking.

The brute force ranks every row in Python by the specified rules: the best tier over all
searched fields (exact, prefix, substring; full names in both orders, phone by digits), exact
and prefix by the smallest matched value then the other name then id, substring newest
first. Values are lowered by PostgreSQL, as the service lowers them.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from crm.common.search import phone_digits
from crm.customers import search
from tests.helpers import create_customer

FIRST = ["Ann", "Anna", "Annabel", "Anna Maria", "Ivan", "Ivanna", "Joanna", "Petro", "Олена", "Іван", "Tech"]
LAST = ["Ann", "Annson", "Ivanenko", "Petrenko", "Kovalenko", "Van Dyke", "Іваненко", "Петренко", "Zubko", "Maria"]
COMPANIES = [None, None, "Ann Tech", "Tech Ann", "100% Natural", "a_b Studio", "ТОВ Іван", "Petrenko & Sons"]

QUERIES = [
    "ann",
    "an",
    "anna",
    "anna m",
    "anna maria zubko",
    "ivan",
    "ivan pe",
    "petrenko ivan",
    "van d",
    "enko",
    "іван",
    "тов",
    "tech",
    "100%",
    "a_b",
    "_b",
    "0% n",
    "67 12",
    "380",
    "12",
    "example",
    "@ex",
    "qqqq",
    "aann",  # "Anna Annson" joined without a space would contain it
    "ann.1",  # caseless? no: letters; the email's digits and dot
    "1@",
]


async def _seed(db: asyncpg.Connection[Any], count: int = 300) -> None:
    rng = random.Random(5)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        company = rng.choice(COMPANIES)
        rows.append(
            (
                first,
                last,
                f"{first.split()[0].lower()}.{i}@example.com" if rng.random() < 0.8 else None,
                f"+380 67 {rng.randrange(10**7):07d}" if rng.random() < 0.7 else None,
                company,
                f"{rng.randrange(10**7, 10**8)}" if company else None,
                start + timedelta(seconds=rng.randrange(10**7)),
            )
        )
    await db.executemany(
        "INSERT INTO customers (first_name, last_name, email, phone, company_name, tax_id, owner_id, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, gen_random_uuid(), $7)",
        rows,
    )


async def _brute_force(db: asyncpg.Connection[Any], query: str, limit: int) -> list[str]:
    lowered = await db.fetchval("SELECT lower($1::text)", query)
    rows = await db.fetch(
        "SELECT id, created_at, lower(first_name) AS f, lower(last_name) AS l, lower(email) AS e, "
        "lower(company_name) AS c, lower(tax_id) AS t, regexp_replace(phone, '\\D', '', 'g') AS p FROM customers"
    )
    digits = phone_digits(query)
    prefix_tiers: list[tuple[int, str, str, uuid.UUID]] = []
    substring: list[tuple[datetime, uuid.UUID]] = []
    for r in rows:
        fields = [
            (r["f"], r["l"], lowered),
            (r["l"], r["f"], lowered),
            (r["f"] + " " + r["l"], "", lowered),
            (r["l"] + " " + r["f"], "", lowered),
            (r["e"], "", lowered),
            (r["c"], "", lowered),
            (r["t"], "", lowered),
            (r["p"], "", digits),
        ]
        keys = []
        for value, second, wanted in fields:
            if value is None or not wanted:
                continue
            if value == wanted:
                keys.append((0, value, second))
            elif value.startswith(wanted):
                keys.append((1, value, second))
            elif wanted in value:
                keys.append((2, "", ""))
        if not keys:
            continue
        best = min(keys)
        if best[0] < 2:
            prefix_tiers.append((best[0], best[1], best[2], r["id"]))
        else:
            substring.append((r["created_at"], r["id"]))
    ranked = [str(k[3]) for k in sorted(prefix_tiers)]
    ranked += [str(i) for _, i in sorted(substring, reverse=True)]
    return ranked[:limit]


async def _search(client: httpx.AsyncClient, headers: dict[str, str], query: str, limit: int = 10) -> list[str]:
    response = await client.get("/api/customers/search", params={"query": query, "limit": limit}, headers=headers)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()]


@pytest.mark.parametrize(
    "windows",
    [
        None,  # as configured: on 300 rows the first walk settles common fragments
        lambda need: (1, 2),  # walks too short to fill: the trigram fallback answers
        lambda need: (10_000, 10_000),  # walks that always reach the end of the table
        lambda need: (2, 400),  # the second walk settles it
    ],
    ids=["configured", "fallback", "walk", "second-walk"],
)
async def test_every_query_and_limit_ranks_as_the_brute_force(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    db: asyncpg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
    windows: Any,
) -> None:
    if windows is not None:
        monkeypatch.setattr(search, "windows", windows)
    await _seed(db)
    for query in QUERIES:
        for limit in (1, 3, 10, 40, 100):
            expected = await _brute_force(db, query, limit)
            if not expected and search.typo_tolerant(query):
                continue  # the typo-tolerant fallback answers, which the brute force does not model
            assert await _search(client, admin, query, limit) == expected, (query, limit)


async def test_the_brute_force_sees_every_tier_and_more_than_a_page(db: asyncpg.Connection[Any]) -> None:
    # Guards the test above: its queries fill pages from each tier and beyond one page.
    await _seed(db)
    full = {q: await _brute_force(db, q, 1000) for q in ("ann", "enko", "12", "qqqq", "anna m")}
    assert len(full["ann"]) > 100
    assert len(full["enko"]) > 40
    assert len(full["12"]) > 10
    assert full["qqqq"] == []
    assert full["anna m"]


async def _make(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> str:
    body: dict[str, Any] = {"first_name": "Nobody", "last_name": "Nothing", "email": None, "phone": None}
    body.update(fields)
    return str((await create_customer(client, headers, **body))["id"])


async def test_prefix_in_one_field_beats_substring_in_another(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    # Both contain "ann" somewhere; only the first also starts a field with it. The second is
    # newer, so a substring-only ranking (newest first) would put it first.
    both = await _make(client, admin, last_name="Annfield", company_name="Joanna Group")
    substring = await _make(client, admin, first_name="Joanna", company_name="Hanna Group")
    assert await _search(client, admin, "ann") == [both, substring]


async def test_exact_prefix_substring_across_different_fields(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    substring = await _make(client, admin, first_name="A", last_name="A", company_name="XAB12 Ltd")
    prefix = await _make(client, admin, first_name="B", last_name="B", email="ab12x@example.com")
    exact = await _make(client, admin, first_name="C", last_name="C", tax_id="AB12")
    assert await _search(client, admin, "ab12") == [exact, prefix, substring]
    assert await _search(client, admin, "ab12", limit=1) == [exact]
    assert await _search(client, admin, "ab12", limit=2) == [exact, prefix]


async def test_prefix_tier_orders_by_matched_value_then_other_name(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    kovalyk = await _make(client, admin, first_name="Kovalyk", last_name="Adams")
    petro = await _make(client, admin, first_name="Petro", last_name="Kovalenko")
    anna = await _make(client, admin, first_name="Anna", last_name="Kovalenko")
    company = await _make(client, admin, company_name="Kovalenko Group")
    # kovalenko < kovalenko group < kovalyk; within Kovalenko by first name.
    assert await _search(client, admin, "koval") == [anna, petro, company, kovalyk]


async def test_substring_tier_is_newest_first(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    # Names sort opposite to creation, so an alphabetical order would fail this test.
    oldest = await _make(client, admin, first_name="Aaron", company_name="Mega Corp")
    middle = await _make(client, admin, first_name="Bella", company_name="Mega Corp")
    newest = await _make(client, admin, first_name="Zed", company_name="Mega Corp")
    assert await _search(client, admin, "corp") == [newest, middle, oldest]


async def test_full_name_spanning_both_names(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    exact = await _make(client, admin, first_name="Anna", last_name="Maria")
    prefix = await _make(client, admin, first_name="Anna", last_name="Mariachi")
    in_first = await _make(client, admin, first_name="Anna Maria", last_name="Zubko")
    reversed_name = await _make(client, admin, first_name="Maria", last_name="Anna")
    # Exact: "first last" of one, "last first" of another (no second name in the key: by id),
    # the first name alone of a third (then by its last name); prefix: "first last" of a fourth.
    found = await _search(client, admin, "Anna Maria")
    assert found[:2] == sorted([exact, reversed_name], key=uuid.UUID)
    assert found[2:] == [in_first, prefix]


async def test_phone_digit_prefixes(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    contains = await _make(client, admin, first_name="A", phone="+44 380 671")
    prefix = await _make(client, admin, first_name="B", phone="+380 67 111 22 33")
    exact = await _make(client, admin, first_name="C", phone="(380) 67")
    assert await _search(client, admin, "+380 67") == [exact, prefix, contains]


async def test_wildcards_stay_literal_in_prefix_walks(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    percent = await _make(client, admin, company_name="50% Off")
    await _make(client, admin, company_name="50 Cent Off")
    underscore = await _make(client, admin, last_name="O_Neil")
    await _make(client, admin, last_name="OxNeil")
    assert await _search(client, admin, "50%") == [percent]
    assert await _search(client, admin, "o_n") == [underscore]


async def test_typos_only_when_nothing_matches_and_not_for_short_queries(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    petrenko = await _make(client, admin, first_name="Ivan", last_name="Petrenko")
    tetiana = await _make(client, admin, email="tetiana.boiko@example.com")
    assert await _search(client, admin, "Petrneko") == [petrenko]
    # A real substring match leaves the typo pass out entirely.
    substring = await _make(client, admin, company_name="PetrnekoSoft")
    assert await _search(client, admin, "Petrneko") == [substring]
    # Four letters: "tech" shares "te" with "tetiana" (similarity 0.4), which is noise; so do
    # words under five letters in longer queries.
    assert await _search(client, admin, "tech") == []
    assert await _search(client, admin, "tech tech") == []
    assert await _search(client, admin, "tetyana") == [tetiana]


async def test_prefix_walks_reach_characters_high_in_unicode(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    # The walks' index range ends at the query followed by U+10FFFF: names whose next character
    # is anywhere below it (astral emoji, U+FFFD, CJK) are still prefix matches.
    names = ["Bond\U0001f600", "Bond\ufffd", "Bond\u4e2d", "Bond"]
    made = {name: (await create_customer(client, admin, last_name=name))["id"] for name in names}
    response = await client.get("/api/customers/search", params={"query": "bond", "limit": 10}, headers=admin)
    assert response.status_code == 200, response.text
    found = [c["id"] for c in response.json()]
    assert found[0] == made["Bond"]  # the exact match first
    assert set(found) == set(made.values())
