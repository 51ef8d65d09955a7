"""Huge, negative, fractional and non-numeric `page` and `limit` on every paged or limited route:
422 naming the parameter, never a 5xx; the largest allowed values still answer 200."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm.common.pagination import MAX_LIMIT, MAX_PAGE
from crm.config import Settings
from crm.orders.fake_server import create_fake_app
from tests.conftest import TEST_JWT_SECRET
from tests.helpers import assert_problem, create_customer
from tests.hostile.support import assert_clean
from tests.orders.stub import start_server

BAD_NUMBERS = [
    str(10**30),
    "9" * 400,
    str(2**63),
    str(2**31),
    "-1",
    "0",
    "-0",
    "1e3",
    "1E3",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "1.5",
    "0x10",
    "0b1",
    "",
    " ",
    "1 1",
    "\u0661",  # ARABIC-INDIC DIGIT ONE: a digit to str.isdigit(), not a number here
    "\uff11",  # FULLWIDTH DIGIT ONE
    "true",
    "null",
    "[1]",
    "1;DROP TABLE customers",
]


@pytest.fixture(scope="module")
def order_service_url() -> Iterator[str]:
    with start_server(create_fake_app(orders_per_customer=3)) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, order_service_url: str) -> Settings:
    """As the shared one, plus the stand-in Order Service, so the orders route answers 200 too."""
    return Settings(
        jwt_secret=TEST_JWT_SECRET,
        CRM_DATA_DIR=tmp_path,
        log_format="json",
        rate_limit_per_minute=0,
        order_service_url=order_service_url,
    )


def routes(customer_id: str) -> list[tuple[str, dict[str, str], tuple[str, ...]]]:
    """(path, required query, the size parameters it takes)."""
    return [
        ("/api/customers", {}, ("page", "limit")),
        (f"/api/customers/{customer_id}/orders", {}, ("page", "limit")),
        (f"/api/interactions/customer/{customer_id}", {}, ("page", "limit")),
        ("/api/interactions/date-range", {}, ("page", "limit")),
        ("/api/customers/search", {"query": "Ivan"}, ("limit",)),
        ("/api/contacts/search", {"query": "Ivan"}, ("limit",)),
        ("/api/interactions/search", {"query": "Ivan"}, ("limit",)),
    ]


async def test_bad_page_and_limit_are_422_everywhere(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    checked = 0
    for path, required, parameters in routes(customer["id"]):
        for parameter in parameters:
            for value in BAD_NUMBERS:
                response = await client.get(path, params={**required, parameter: value}, headers=admin)
                assert_clean(response)
                assert response.status_code == 422, (path, parameter, value, response.text)
                assert_problem(response, 422, field=parameter)
                checked += 1
            # One past the largest allowed value, and a repeated parameter whose last value is huge.
            too_big = str(MAX_PAGE + 1 if parameter == "page" else MAX_LIMIT + 1)
            queries: list[list[tuple[str, str | int | float | bool | None]]] = [
                [*required.items(), (parameter, too_big)],
                [*required.items(), (parameter, "1"), (parameter, too_big)],
            ]
            for query in queries:
                response = await client.get(path, params=httpx.QueryParams(query), headers=admin)
                assert_problem(response, 422, field=parameter)
    assert checked == 11 * len(BAD_NUMBERS)


async def test_largest_page_and_limit_answer_200(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin, first_name="Ivan")
    for path, required, parameters in routes(customer["id"]):
        query: dict[str, Any] = {**required, "limit": str(MAX_LIMIT)}
        if "page" in parameters:
            query["page"] = str(MAX_PAGE)
        response = await client.get(path, params=query, headers=admin)
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        if "page" in parameters:
            # Far past the end: an empty page that still counts the rows, not an error.
            items = next(v for k, v in body.items() if k != "pagination")
            assert items == []
            assert body["pagination"]["page"] == MAX_PAGE
            assert body["pagination"]["limit"] == MAX_LIMIT
            assert body["pagination"]["hasNext"] is False
        else:
            assert isinstance(body, list)
    listed = await client.get("/api/customers", params={"page": MAX_PAGE, "limit": MAX_LIMIT}, headers=admin)
    assert listed.json()["pagination"]["total"] == 1
