"""Fixtures of the Order Service tests: a real stub server per test, and the CRM pointed at it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from crm.config import Settings
from crm.main import create_app
from crm.orders.client import CircuitBreaker, OrderServiceClient
from tests.conftest import TEST_JWT_SECRET
from tests.helpers import TokenFactory, create_customer
from tests.orders.stub import StubOrderService, start_server

# Small, so the timeout rows of the failure table cost a second, not five.
TIMEOUT = 1.0
# The shared app's: long enough that "answered at once" and "waited for the timeout" differ clearly.
SHARED_TIMEOUT = 3.0


@dataclass
class Crm:
    app: Starlette
    http: httpx.AsyncClient

    @property
    def order_client(self) -> OrderServiceClient:
        client: OrderServiceClient = self.app.state.order_client
        return client

    @property
    def breaker(self) -> CircuitBreaker:
        return self.order_client.breaker


MakeCrm = Callable[..., AbstractAsyncContextManager[Crm]]


@pytest.fixture
def stub() -> Iterator[StubOrderService]:
    service = StubOrderService()
    with start_server(service.app(), on_stop=service.stop) as url:
        service.url = url
        yield service


@asynccontextmanager
async def running_crm(settings: Settings, database_url: str) -> AsyncIterator[Crm]:
    app = create_app(settings, database_url=database_url)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as http:
            yield Crm(app, http)


@pytest.fixture
def make_crm(settings: Settings, database_url: str) -> MakeCrm:
    """Build the CRM app (lifespan run) for an Order Service URL and timeout."""

    def make(
        order_service_url: str | None, order_timeout: float = TIMEOUT, **overrides: Any
    ) -> AbstractAsyncContextManager[Crm]:
        # The shared settings (test JWT secret, rate limit off, ...) with this Order Service.
        update = {"order_service_url": order_service_url, "order_service_timeout": order_timeout, **overrides}
        return running_crm(settings.model_copy(update=update), database_url)

    return make


@pytest.fixture
async def crm(make_crm: MakeCrm, stub: StubOrderService) -> AsyncIterator[Crm]:
    async with make_crm(stub.url) as made:
        yield made


# --- one CRM for a whole module, for the long read-only tables ----------------------------------
#
# Creating a database per test costs a few hundred milliseconds; the parameter and failure tables
# have dozens of rows that only read one customer. They share one database, app and stub server
# per module; every test still starts from a fresh stub script, no recorded requests and a
# closed circuit breaker (see `shared`).


@dataclass
class Shared:
    crm: Crm
    stub: StubOrderService
    customer_id: str  # has one contact and no interactions
    tokens: TokenFactory
    headers: dict[str, str]  # an admin's


@pytest.fixture(scope="module")
async def shared_database_url(server_url: str, template_db: str) -> AsyncIterator[str]:
    name = f"crm_orders_{uuid.uuid4().hex[:12]}"
    admin_dsn = make_url(server_url).set(drivername="postgresql")
    admin = await asyncpg.connect(admin_dsn.render_as_string(hide_password=False))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        yield admin_dsn.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="module")
def shared_stub() -> Iterator[StubOrderService]:
    service = StubOrderService()
    with start_server(service.app(), on_stop=service.stop) as url:
        service.url = url
        yield service


@pytest.fixture(scope="module")
async def shared_module(
    shared_database_url: str, shared_stub: StubOrderService, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Shared]:
    settings = Settings(
        jwt_secret=TEST_JWT_SECRET,
        CRM_DATA_DIR=Path(tmp_path_factory.mktemp("crm-data")),
        log_format="json",
        rate_limit_per_minute=0,
        order_service_url=shared_stub.url,
        order_service_timeout=SHARED_TIMEOUT,
    )
    tokens = TokenFactory(settings)
    headers = tokens.headers("admin")
    async with running_crm(settings, shared_database_url) as crm:
        created = await create_customer(crm.http, headers, contacts=[{"first_name": "A", "last_name": "B"}])
        yield Shared(crm, shared_stub, created["id"], tokens, headers)


@pytest.fixture
def shared(shared_module: Shared) -> Shared:
    stub = shared_module.stub
    stub.script.clear()
    stub.behaviour = None
    stub.orders.clear()
    stub.requests.clear()
    shared_module.crm.order_client.breaker = CircuitBreaker()
    return shared_module
