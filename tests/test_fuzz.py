"""Property-based fuzz of the whole API from its own OpenAPI document (schemathesis).

Every documented operation gets generated requests - schemathesis' coverage phase (boundary and
missing values, wrong types, odd content types) plus Hypothesis fuzzing, both with valid data and
with data that breaks the documented schema - sent through the in-process ASGI app backed by a
real, migrated and seeded PostgreSQL database, as an admin, a manager or an employee. Every
answer must be one the document promises: never a 5xx, a documented status code, content type,
headers and body schema; and a request the schema calls invalid is never accepted.

`make test` runs a bounded, deterministic pass (CRM_FUZZ_EXAMPLES Hypothesis examples per
operation, 10 unless set, derandomized); `make fuzz` runs a long one from a fresh seed, which it
prints: CRM_FUZZ_SEED=<seed> replays it.
"""

from __future__ import annotations

import os
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import hypothesis
import pytest
import schemathesis
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette

from crm.config import Settings
from crm.main import create_app
from crm.orders.fake_server import create_fake_app
from tests.conftest import TEST_JWT_SECRET, _asyncpg_dsn
from tests.helpers import TokenFactory, customer_body
from tests.orders.stub import start_server

MAX_EXAMPLES = int(os.environ.get("CRM_FUZZ_EXAMPLES", "10"))
SEED = os.environ.get("CRM_FUZZ_SEED")
ROLES = ("admin", "manager", "employee")
# The employee the fuzz acts as: the seed gives it interactions of its own and some of another's,
# so its PUT and DELETE meet both answers (2xx and 403).
EMPLOYEE_ID = uuid.UUID("00000000-0000-4000-8000-00000000e001")
OTHER_EMPLOYEE_ID = uuid.UUID("00000000-0000-4000-8000-00000000e002")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Not asserted, and why:
# - positive_data_acceptance: the document cannot say everything the API checks (ISO dates in
#   query strings, 2 characters *after trimming*, no NUL, email-validator's rules, If-Match
#   against the current version), so some schema-valid requests rightly get 412 or 422.
# - unsupported_method: `PUT /api/customers/search` is `PUT /api/customers/{customer_id}` with the
#   id "search", so the answer is 422 (not a UUID), not 405; tests/test_errors.py covers 405.


def fuzz_settings(data_dir: Path, order_service_url: str | None = None) -> Settings:
    return Settings(
        _env_file=None,
        jwt_secret=TEST_JWT_SECRET,
        CRM_DATA_DIR=data_dir,
        log_format="json",
        log_level="WARNING",
        rate_limit_per_minute=0,
        redis_url=None,
        cors_origins="",
        order_service_url=order_service_url,
    )


def _load_schema() -> Any:
    """The document the app serves at /openapi.json (test_the_fuzzed_document_is_the_served_one
    holds them equal), taken from an app that is never started: collection needs no database."""
    app = create_app(fuzz_settings(Path(".")), database_url="postgresql://unused@127.0.0.1:1/unused")
    loaded = schemathesis.openapi.from_dict(app.state.openapi)
    # The tokens are ours (valid, one role per request); schemathesis would otherwise send its own.
    loaded.config.generation.update(with_security_parameters=False)
    return loaded


schema = _load_schema()


@dataclass(frozen=True)
class Seeded:
    """A database of a few customers, contacts and interactions, to clone per operation."""

    database: str
    ids: dict[str, list[str]]


@pytest.fixture(scope="module")
async def seeded(server_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Seeded]:
    name = f"crm_fuzz_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        url = _asyncpg_dsn(server_url, name)
        app = create_app(fuzz_settings(tmp_path_factory.mktemp("fuzz-seed")), database_url=url)
        transport = httpx.ASGITransport(app=app)
        async with LifespanManager(app), httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
            await _seed(client, TokenFactory(app.state.settings))
        conn = await asyncpg.connect(url)
        try:
            ids = {
                table: [str(row["id"]) for row in await conn.fetch(f"SELECT id FROM {table} ORDER BY id")]  # noqa: S608
                for table in ("customers", "contacts", "interactions")
            }
        finally:
            await conn.close()
        yield Seeded(name, ids)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _seed(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    authors = [tokens.headers("employee", EMPLOYEE_ID), tokens.headers("employee", OTHER_EMPLOYEE_ID)]
    for n in range(6):
        contacts = [
            {"first_name": f"Contact{n}{k}", "last_name": "Seed", "email": f"c{n}{k}@example.com"} for k in (0, 1)
        ]
        body = customer_body(first_name=f"Seed{n}", company_name=f"Firm {n} 100%_off", contacts=contacts)
        response = await client.post("/api/customers", json=body, headers=authors[n % 2])
        assert response.status_code == 201, response.text
        customer = response.json()
        for k, kind in enumerate(("call", "email", "meeting")):
            interaction = {
                "customer_id": customer["id"],
                "contact_id": customer["contacts"][k % 2]["id"],
                "type": kind,
                "subject": f"Seeded {kind} {n}",
                "description": "seeded",
            }
            created = await client.post("/api/interactions", json=interaction, headers=authors[k % 2])
            assert created.status_code == 201, created.text


@pytest.fixture(scope="module")
def order_service_url() -> Iterator[str]:
    """The development stand-in Order Service, so that the orders routes answer with real data."""
    with start_server(create_fake_app(orders_per_customer=3)) as url:
        yield url


@pytest.fixture
async def fuzz_app(seeded: Seeded, server_url: str, order_service_url: str, tmp_path: Path) -> AsyncIterator[Starlette]:
    """A fresh copy of the seeded database for each operation, and an app over it.

    schemathesis runs the app (and its lifespan) on its own event loop thread; the lifespan is
    shut down before the database goes.
    """
    name = f"crm_fuzzrun_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{seeded.database}"')
        try:
            yield create_app(fuzz_settings(tmp_path, order_service_url), database_url=_asyncpg_dsn(server_url, name))
        finally:
            shutdown_lifespans()
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _seeded_or_derandomized(test: Callable[..., None]) -> Callable[..., None]:
    return test if SEED is None else hypothesis.seed(int(SEED))(test)


@schema.parametrize()
@_seeded_or_derandomized
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=SEED is None,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api(case: Any, fuzz_app: Starlette, seeded: Seeded) -> None:
    # Role and target rows follow from the request itself, so a failing case replays exactly.
    digest = zlib.crc32(repr((case.operation.label, case.path_parameters, case.query, case.body)).encode())
    role = ROLES[digest % len(ROLES)]
    if digest % 3:
        _aim_at_seeded_rows(case, seeded.ids, digest >> 8)
    headers = TokenFactory(fuzz_app.state.settings).headers(role, EMPLOYEE_ID if role == "employee" else None)
    response = case.call(app=fuzz_app, headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _aim_at_seeded_rows(case: Any, ids: dict[str, list[str]], pick: int) -> None:
    """Point ids the generator drew at seeded rows, so that requests reach real rows too.

    Only well-formed ids are replaced: a negative case stays negative, as its broken id may be
    what makes it so.
    """
    chosen = {
        "customer_id": ids["customers"][pick % len(ids["customers"])],
        "contact_id": ids["contacts"][pick % len(ids["contacts"])],
        "interaction_id": ids["interactions"][pick % len(ids["interactions"])],
    }
    chosen["customerId"] = chosen["customer_id"]
    for container in (case.path_parameters, case.query, case.body):
        if isinstance(container, dict):
            for key, value in chosen.items():
                if _is_uuid(container.get(key)):
                    container[key] = value


async def test_the_fuzzed_document_is_the_served_one(client: httpx.AsyncClient) -> None:
    served = await client.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == schema.raw_schema
    # And it documents what the fuzz relies on: every error as a problem, on every /api operation.
    for path, operations in schema.raw_schema["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/api/"):
                for status in ("401", "403", "422"):
                    content = operation["responses"][status]["content"]
                    assert list(content) == ["application/problem+json"], (method, path, status)
