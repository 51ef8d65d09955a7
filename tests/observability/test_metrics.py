"""GET /metrics of one in-process app: route templates as labels, the token, what is counted.

The metrics are process-wide (prometheus-client's registry), so each test compares a scrape
before and after what it does.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from crm.config import Settings
from crm.observability.metrics import RequestMetrics
from tests.helpers import TokenFactory, assert_problem, create_customer, customer_body
from tests.observability.support import label_values, samples, value
from tests.orders.stub import StubOrderService, answer, slow, start_server
from tests.reliability.support import app_client

ROUTE = "/api/customers/{customer_id}"
REQUESTS = "crm_http_requests_total"
DURATION_COUNT = "crm_http_request_duration_seconds_count"


async def scrape(http: httpx.AsyncClient, **headers: str) -> str:
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


def delta(before: str, after: str, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_requests_are_counted_by_route_template_never_by_path(
    settings: Settings, database_url: str, admin: dict[str, str]
) -> None:
    async with app_client(settings, database_url) as (_, http):
        ids = [(await create_customer(http, admin))["id"] for _ in range(2)]
        before = await scrape(http)
        for customer_id in ids:
            assert (await http.get(f"/api/customers/{customer_id}", headers=admin)).status_code == 200
        assert (await http.get(f"/api/customers/{uuid.uuid4()}", headers=admin)).status_code == 404
        assert (await http.get("/no/such/path/1", headers=admin)).status_code == 404
        assert (await http.get("/no/such/path/2", headers=admin)).status_code == 404
        assert (await http.patch(f"/api/customers/{ids[0]}", headers=admin)).status_code == 405
        assert (await http.request("BREW", "/no/such/path/3")).status_code == 404
        after = await scrape(http)

    get = {"method": "GET", "route": ROUTE}
    assert delta(before, after, REQUESTS, **get, status="200") == 2
    assert delta(before, after, REQUESTS, **get, status="404") == 1
    assert delta(before, after, DURATION_COUNT, **get) == 3
    assert delta(before, after, REQUESTS, method="GET", route="unmatched", status="404") == 2
    # The path matched a route, the method did not: still its template.
    assert delta(before, after, REQUESTS, method="PATCH", route=ROUTE, status="405") == 1
    # Any token is a method: unknown ones share one label value.
    assert delta(before, after, REQUESTS, method="other", route="unmatched", status="404") == 1
    routes = label_values(after, REQUESTS, "route")
    assert not any(customer_id in route for route in routes for customer_id in ids)
    assert {ROUTE, "/api/customers", "/metrics", "unmatched"} <= routes
    assert label_values(after, "crm_http_request_duration_seconds_bucket", "le") >= {"0.005", "+Inf"}


async def test_metrics_token_is_required_when_set(settings: Settings, database_url: str) -> None:
    token = "metrics-" + uuid.uuid4().hex
    # No JWT and no rate limit on /metrics, even with a limit of one request a minute.
    async with app_client(settings, database_url, metrics_token=token, rate_limit_per_minute=1) as (_, http):
        missing = await http.get("/metrics")
        assert_problem(missing, 401)
        assert missing.headers["www-authenticate"] == "Bearer"
        for wrong in (f"Bearer {token}x", token, f"Basic {token}", "Bearer "):
            refused = await http.get("/metrics", headers={"Authorization": wrong})
            assert_problem(refused, 401)
            assert "crm_http_requests_total" not in refused.text
        for _ in range(3):
            text = await scrape(http, Authorization=f"Bearer {token}")
            assert "# TYPE crm_http_requests_total counter" in text
        assert (await scrape(http, Authorization=f"bearer {token}")).startswith("#")


async def test_metrics_off_means_no_route_and_no_counting(settings: Settings, database_url: str) -> None:
    async with app_client(settings, database_url) as (_, on):
        before = await scrape(on)
        async with app_client(settings, database_url, metrics_enabled=False) as (app, off):
            assert RequestMetrics not in [m.cls for m in app.user_middleware]
            assert_problem(await off.get("/metrics"), 404)
            assert (await off.get("/health")).status_code == 200
        after = await scrape(on)
    assert delta(before, after, REQUESTS, method="GET", route="/health", status="200") == 0
    assert delta(before, after, REQUESTS, method="GET", route="/metrics", status="404") == 0


async def _scrape_until(http: httpx.AsyncClient, name: str, labels: dict[str, str], wanted: float) -> str:
    deadline = time.monotonic() + 5
    while True:
        text = await scrape(http)
        if value(text, name, **labels) == wanted or time.monotonic() > deadline:
            assert value(text, name, **labels) == wanted, text
            return text
        await asyncio.sleep(0.02)


async def test_pool_figures_show_waiters_and_time_waited(
    settings: Settings, database_url: str, admin: dict[str, str]
) -> None:
    one = {"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout": 5.0}
    async with app_client(settings, database_url, **one) as (app, http):
        customer = await create_customer(http, admin)
        before = await scrape(http)
        for pool in ("read", "orm"):
            assert value(before, "crm_db_pool_max_connections", pool=pool) == 1
            assert value(before, "crm_db_pool_waiters", pool=pool) == 0

        # The read pool's only connection held: a GET by id waits for it.
        held = await app.state.read_pool.acquire()
        waiting = asyncio.create_task(http.get(f"/api/customers/{customer['id']}", headers=admin))
        text = await _scrape_until(http, "crm_db_pool_waiters", {"pool": "read"}, 1)
        assert value(text, "crm_db_pool_connections_in_use", pool="read") == 1
        await asyncio.sleep(0.3)
        await app.state.read_pool.release(held)
        assert (await waiting).status_code == 200

        # The transactions' pool's only connection held: a create waits for it.
        async with app.state.engine.connect() as connection:
            creating = asyncio.create_task(http.post("/api/customers", json=customer_body(), headers=admin))
            text = await _scrape_until(http, "crm_db_pool_waiters", {"pool": "orm"}, 1)
            assert value(text, "crm_db_pool_connections_in_use", pool="orm") == 1
            await asyncio.sleep(0.3)
            await connection.rollback()
        assert (await creating).status_code == 201
        after = await scrape(http)

    for pool in ("read", "orm"):
        assert value(after, "crm_db_pool_waiters", pool=pool) == 0
        assert delta(before, after, "crm_db_pool_checkouts_total", pool=pool) >= 2
        # The waiting request's checkout took the 0.3 s the connection stayed held, at least.
        assert delta(before, after, "crm_db_pool_wait_seconds_total", pool=pool) >= 0.25
        assert value(after, "crm_db_pool_connections", pool=pool) == 1


@pytest.fixture
def stub() -> Iterator[StubOrderService]:
    service = StubOrderService()
    with start_server(service.app(), on_stop=service.stop) as url:
        service.url = url
        yield service


async def test_order_service_calls_by_outcome_and_the_breaker(
    settings: Settings, database_url: str, admin: dict[str, str], stub: StubOrderService
) -> None:
    options: dict[str, Any] = {"order_service_url": stub.url, "order_service_timeout": 0.5}
    async with app_client(settings, database_url, **options) as (_, http):
        customer_id = (await create_customer(http, admin))["id"]
        orders = f"/api/customers/{customer_id}/orders"
        before = await scrape(http)
        assert value(before, "crm_order_service_breaker_open") == 0
        assert (await http.get(orders, headers=admin)).status_code == 200
        stub.script.append(slow(2.0))
        assert (await http.get(orders, headers=admin)).status_code == 504
        stub.behaviour = answer(500)
        for _ in range(4):  # with the timeout, five failures in a row: the breaker opens
            assert (await http.get(orders, headers=admin)).status_code == 502
        assert (await http.get(orders, headers=admin)).status_code == 503
        after = await scrape(http)

    calls = "crm_order_service_calls_total"
    assert delta(before, after, calls, outcome="ok") == 1
    assert delta(before, after, calls, outcome="timeout") == 1
    assert delta(before, after, calls, outcome="error") == 4
    assert delta(before, after, calls, outcome="breaker_open") == 1
    durations = "crm_order_service_call_duration_seconds"
    assert delta(before, after, f"{durations}_count", outcome="timeout") == 1
    assert delta(before, after, f"{durations}_sum", outcome="timeout") >= 0.45
    assert delta(before, after, f"{durations}_bucket", outcome="timeout", le="0.25") == 0
    assert value(after, "crm_order_service_breaker_open") == 1
    assert delta(before, after, "crm_order_service_breaker_openings_total") == 1


async def test_rate_limit_rejections_and_idempotent_replays_are_counted(
    settings: Settings, database_url: str, tokens: TokenFactory
) -> None:
    headers = tokens.headers("admin")
    async with app_client(settings, database_url, rate_limit_per_minute=3) as (_, http):
        before = await scrape(http)
        key = {"Idempotency-Key": uuid.uuid4().hex, **headers}
        body = customer_body()
        first = await http.post("/api/customers", json=body, headers=key)
        again = await http.post("/api/customers", json=body, headers=key)
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.headers["idempotent-replayed"] == "true"
        assert (await http.get("/api/customers", headers=headers)).status_code == 200
        assert (await http.get("/api/customers", headers=headers)).status_code == 429
        after = await scrape(http)
    assert delta(before, after, "crm_idempotent_replays_total") == 1
    assert delta(before, after, "crm_rate_limit_rejections_total") == 1
    assert delta(before, after, REQUESTS, method="GET", route="/api/customers", status="429") == 1


def test_samples_are_read_by_prometheus_clients_parser() -> None:
    # The helper the tests read scrapes with: it must see labels and values as exposed.
    text = '# TYPE x_total counter\nx_total{a="1",b="two"} 3.0\n'
    assert samples(text) == {("x_total", frozenset({("a", "1"), ("b", "two")})): 3.0}
    assert value(text, "x_total", a="1", b="two") == 3
    assert value(text, "x_total", a="1") == 0
