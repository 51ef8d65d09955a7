"""Customer search on the asyncpg read pool: what its statements must hold to stay cheap and exact there.

The pool plans generically and resets nothing between requests (crm.db.reads.create_read_pool), so
the statements carry their LIMITs in their text and the typo tier's setting must end with it.
The phone's digits are matched on the raw value; that must agree with stripping the non-digits.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import httpx
from starlette.applications import Starlette
from starlette.responses import JSONResponse

from crm.customers import search
from tests.helpers import create_customer

_PARAMETER_LIMIT = re.compile(r"LIMIT\s+\$", re.IGNORECASE)


def _statements() -> dict[str, str]:
    shapes = {
        "prefix": search._prefix_statement(False, 0, 10),
        "prefix, phone, spaces": search._prefix_statement(True, 2, 37),
        "walk": search._walk_statement(False, False, False, 0, 500, 10),
        "walk, phone, on from 500": search._walk_statement(True, True, True, 500, 3750, 7),
        "rare": search._rare_statement(True, False, False, 3),
        "similar words": search._SIMILAR_WORDS,
    }
    return {name: statement.sql for name, statement in shapes.items()}


def test_no_statement_leaves_a_limit_to_a_parameter() -> None:
    # A generic plan prices `LIMIT $n` as a tenth of its input (and picks hash joins for it).
    for name, sql in _statements().items():
        assert "LIMIT" in sql, name
        assert not _PARAMETER_LIMIT.search(sql), name
    assert "LIMIT 37" in _statements()["prefix, phone, spaces"]


async def test_typo_threshold_does_not_outlive_the_request(
    app: Starlette, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    petrenko = await create_customer(client, admin, first_name="Ivan", last_name="Petrenko")
    pool = app.state.read_pool
    async with pool.acquire() as connection:
        await connection.fetchval("SELECT word_similarity('a', 'b')")  # loads pg_trgm, which defines the setting
        default = await connection.fetchval("SHOW pg_trgm.word_similarity_threshold")
    assert float(default) != search.TYPO_THRESHOLD  # else this test could not tell
    response = await client.get("/api/customers/search", params={"query": "Petrneko"}, headers=admin)
    assert [c["id"] for c in response.json()] == [petrenko["id"]]
    # The search ran on the pool's only connection; whoever gets it next sees the default.
    assert pool.get_size() == 1
    async with pool.acquire() as connection:
        assert await connection.fetchval("SHOW pg_trgm.word_similarity_threshold") == default
        assert not connection.is_in_transaction()


PHONES = [
    "+380 (67) 123-45-67",
    "380671234567",
    "0 6 7 1",
    "06-7x1",  # a letter between digits keeps them apart only for digits_of's neighbours: it drops it
    "067 1",
    "0671",
    "1067",
    "+44 7814629700",
    "٠٦٧١",  # Arabic-Indic digits: digits to Python; to PostgreSQL's \D as its locale says
    "０６７１",  # fullwidth
    "0٦71",
    "",
    "no digits at all",
    "(0)(6)(7)(1)",
]
QUERIES = ["0671", "067", "67 1", "4567", "٠٦٧١", "٦٧", "０６", "78146", "00"]


async def test_digit_pattern_matches_as_digits_of_does(db: asyncpg.Connection[Any]) -> None:
    checked = matched = 0
    for query in QUERIES:
        params = search.substring_params(query, [])
        assert "digits_pattern" in params, query
        for phone in PHONES:
            stripped, raw = await db.fetchrow(
                r"SELECT regexp_replace($1::text, '\D', '', 'g') LIKE $2, $1::text LIKE $3 AND $1::text ~ $4",
                phone,
                params["digits_contains"],
                params["digits_in_order"],
                params["digits_pattern"],
            )
            assert raw == stripped, (phone, query)
            checked += 1
            matched += bool(stripped)
    # Not vacuous: both answers occur.
    assert 0 < matched < checked


async def test_answer_is_rendered_compactly_from_the_models(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    # The route serialises its items itself; the bytes must stay those Starlette's JSONResponse
    # made of the response models (compact, non-ASCII unescaped), with the list's item fields.
    await create_customer(
        client, admin, first_name="Тарас", last_name="Шевченко", contacts=[{"first_name": "Леся", "last_name": "К"}]
    )
    await create_customer(client, admin, first_name="Тарасик", last_name="Z", email=None, phone=None)
    response = await client.get("/api/customers/search", params={"query": "тарас"}, headers=admin)
    assert response.status_code == 200
    found = response.json()
    assert [c["first_name"] for c in found] == ["Тарас", "Тарасик"]
    assert response.content == JSONResponse(found).body
    listed = (await client.get("/api/customers", params={"search": "тарас"}, headers=admin)).json()["customers"]
    assert sorted(found, key=lambda c: c["id"]) == sorted(listed, key=lambda c: c["id"])
    assert found[0]["primary_contact"]["first_name"] == "Леся"
    assert found[1]["primary_contact"] is None
