"""Customer search: what matches, in which order, and that user text is always literal."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import assert_problem, create_customer


async def _make(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> str:
    """A customer with no email or phone unless given, so only the named fields can match."""
    body: dict[str, Any] = {"first_name": "Nobody", "last_name": "Nothing", "email": None, "phone": None}
    body.update(fields)
    return str((await create_customer(client, headers, **body))["id"])


async def _search(client: httpx.AsyncClient, headers: dict[str, str], query: str, **params: Any) -> list[str]:
    response = await client.get("/api/customers/search", params={"query": query, **params}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list)
    return [c["id"] for c in body]


async def _list_search(client: httpx.AsyncClient, headers: dict[str, str], search: str) -> list[str]:
    response = await client.get("/api/customers", params={"search": search, "limit": 100}, headers=headers)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["customers"]]


async def test_relevance_exact_then_prefix_then_substring(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    # Last names sort opposite to relevance, so an alphabetical order would fail this test.
    substring = await _make(client, admin, first_name="Joanna", last_name="Aaronson")
    prefix = await _make(client, admin, first_name="Annabel", last_name="Boyko")
    exact = await _make(client, admin, first_name="Ann", last_name="Zubko")
    await _make(client, admin, first_name="Unrelated", last_name="Person")

    assert await _search(client, admin, "ann") == [exact, prefix, substring]
    assert await _search(client, admin, "ANN") == [exact, prefix, substring]


async def test_relevance_applies_across_fields(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    in_company = await _make(client, admin, first_name="A", last_name="A", company_name="Best Kyivstar Ltd")
    email_prefix = await _make(client, admin, first_name="B", last_name="B", email="kyivstar.office@example.com")
    exact_company = await _make(client, admin, first_name="C", last_name="C", company_name="KyivStar")

    assert await _search(client, admin, "kyivstar") == [exact_company, email_prefix, in_company]


async def test_same_relevance_orders_substring_matches_newest_first(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # Created in name order, so the old by-name order would give [a1, a2, b].
    a1 = await _make(client, admin, first_name="Xena", last_name="Adams", company_name="Mega Corp")
    a2 = await _make(client, admin, first_name="Yana", last_name="Adams", company_name="Mega Corp")
    b = await _make(client, admin, first_name="Zed", last_name="Bondar", company_name="Mega Corp")
    assert await _search(client, admin, "corp") == [b, a2, a1]


async def test_same_relevance_orders_prefix_matches_by_value_then_other_name(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # Created opposite to the expected order; the substring match is the newest of all.
    b = await _make(client, admin, first_name="Zed", last_name="Adamson")
    a2 = await _make(client, admin, first_name="Yana", last_name="Adams")
    a1 = await _make(client, admin, first_name="Xena", last_name="Adams")
    in_company = await _make(client, admin, first_name="Unrelated", company_name="Joe Adams Ltd")
    assert await _search(client, admin, "ada") == [a1, a2, b, in_company]


async def test_full_name_in_either_order(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    target = await _make(client, admin, first_name="Ivan", last_name="Petrenko")
    await _make(client, admin, first_name="Ivan", last_name="Franko")
    await _make(client, admin, first_name="Petro", last_name="Ivanenko")
    for query in ["Petrenko Ivan", "Ivan Petrenko", "ivan petrenko", "  Ivan   Petrenko  ", "n Petr", "PETRENKO I"]:
        assert await _search(client, admin, query) == [target], query
        assert await _list_search(client, admin, query) == [target], query


async def test_first_and_last_name_alone(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    ivan = await _make(client, admin, first_name="Ivan", last_name="Petrenko")
    other = await _make(client, admin, first_name="Maria", last_name="Ivanova")
    assert await _search(client, admin, "ivan") == [ivan, other]
    assert await _search(client, admin, "petrenko") == [ivan]


async def test_email(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    target = await _make(client, admin, email="olena.k@kyiv.example.com")
    await _make(client, admin, email="other@lviv.example.com")
    for query in ["olena.k@kyiv.example.com", "OLENA.K@", "kyiv.example", "@kyiv"]:
        assert await _search(client, admin, query) == [target], query


@pytest.mark.parametrize(
    ("stored", "query"),
    [
        ("380671234567", "+380 (67) 123"),
        ("+380 (67) 123-45-67", "380671234567"),
        ("+380 (67) 123-45-67", "067-123"),
        ("+380 67 123 4567", "(067) 123 45"),
        ("380.67.123.45.67", "67 123 45 67"),
    ],
)
async def test_phone_digits_are_compared(
    client: httpx.AsyncClient, admin: dict[str, str], stored: str, query: str
) -> None:
    target = await _make(client, admin, phone=stored)
    await _make(client, admin, phone="+1 (555) 010-9999")
    assert await _search(client, admin, query) == [target]
    assert await _list_search(client, admin, query) == [target]


async def test_phone_exact_digits_rank_first(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    contains = await _make(client, admin, first_name="A", last_name="A", phone="+38 050 123 4567")
    exact = await _make(client, admin, first_name="B", last_name="B", phone="050-123-45-67")
    assert await _search(client, admin, "0501234567") == [exact, contains]


async def test_company_name_and_tax_id(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    company = await _make(client, admin, company_name="Roshen Confectionery")
    tax = await _make(client, admin, tax_id="UA-4419-X")
    await _make(client, admin, company_name="Svitoch", tax_id="PL-0000-Y")
    for query in ["Roshen", "roshen conf", "CONFECTIONERY"]:
        assert await _search(client, admin, query) == [company], query
    for query in ["UA-4419-X", "ua-4419", "4419-x"]:
        assert await _search(client, admin, query) == [tax], query


async def test_fields_that_are_not_searched(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await _make(client, admin, city="Zhytomyr", notes="zhytomyr", address="Zhytomyr street", country="Zhytomyria")
    assert await _search(client, admin, "zhytomyr") == []


async def test_no_match_is_an_empty_array(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await _make(client, admin)
    assert await _search(client, admin, "qqqq") == []


# Each query would match other rows if `%`, `_` or `\` acted as LIKE syntax.
WILDCARD_COMPANIES = ["100% Natural", "a_b Studio", "c\\d Labs", "x\\%y Co", "axb Studio", "1000 Natural", "cd Labs"]
WILDCARD_QUERIES: list[tuple[str, str | None]] = [
    ("%%", None),
    ("__", None),
    ("%_", None),
    ("_%", None),
    ("\\\\", None),
    ("100%", "100% Natural"),
    ("0% N", "100% Natural"),
    ("a_b", "a_b Studio"),
    ("c\\d", "c\\d Labs"),
    ("\\%", "x\\%y Co"),
]


async def test_like_wildcards_are_literal(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    ids = {name: await _make(client, admin, company_name=name) for name in WILDCARD_COMPANIES}
    for query, matching_company in WILDCARD_QUERIES:
        expected = [ids[matching_company]] if matching_company else []
        assert await _search(client, admin, query, limit=100) == expected, query
        assert await _list_search(client, admin, query) == expected, query


async def test_percent_query_does_not_match_everything(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for i in range(5):
        await _make(client, admin, first_name=f"Name{i}", company_name=f"Company {i}")
    assert await _search(client, admin, "%%") == []
    assert await _search(client, admin, "_%") == []
    assert await _list_search(client, admin, "%%") == []
    assert len(await _list_search(client, admin, "Name")) == 5


async def test_limit(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for i in range(12):
        await _make(client, admin, first_name=f"Limit{i:02d}")
    assert len(await _search(client, admin, "limit")) == 10  # default
    assert len(await _search(client, admin, "limit", limit=3)) == 3
    assert len(await _search(client, admin, "limit", limit=100)) == 12


async def test_query_length_is_validated(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for query in ["", " ", "a", " a ", "\t\tb\n", "Ї", "x" * 201, "a" * 300]:
        response = await client.get("/api/customers/search", params={"query": query}, headers=admin)
        assert response.status_code == 422, (query, response.text)
        assert_problem(response, 422, "query")


async def test_query_of_exactly_2_and_200_characters_is_fine(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    target = await _make(client, admin, first_name="Yo")
    assert await _search(client, admin, " yo ") == [target]
    assert await _search(client, admin, "y" * 200) == []


async def test_query_is_required(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    assert_problem(await client.get("/api/customers/search", headers=admin), 422, "query")


async def test_bad_limit_is_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for limit in ["0", "101", "-1", "ten", ""]:
        response = await client.get("/api/customers/search", params={"query": "ab", "limit": limit}, headers=admin)
        assert response.status_code == 422, (limit, response.text)
        assert_problem(response, 422, "limit")


async def test_nul_in_query_is_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.get("/api/customers/search", params={"query": "ab\x00cd"}, headers=admin)
    assert_problem(response, 422, "query")


async def test_results_carry_primary_contact(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await create_customer(client, admin, first_name="Primus", contacts=[{"first_name": "Main", "last_name": "Contact"}])
    response = await client.get("/api/customers/search", params={"query": "primus"}, headers=admin)
    [found] = response.json()
    assert found["primary_contact"]["first_name"] == "Main"
    assert "contacts" not in found


async def test_case_insensitive_beyond_ascii(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    # Ukrainian names; both sides are lowered by the database, so a query in the stored case
    # matches even where the locale folds ASCII only.
    target = await _make(client, admin, first_name="Тарас", last_name="Шевченко", company_name="Їжак і Ко")
    await _make(client, admin, first_name="Леся", last_name="Українка")
    for query in ["Шевченко", "шевченко", "ШЕВЧЕНКО", "Тарас Шевченко", "шевченко тарас", "ЇЖАК", "їжак"]:
        assert await _search(client, admin, query) == [target], query
        assert await _list_search(client, admin, query) == [target], query
