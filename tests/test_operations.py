"""Operations endpoints: liveness, readiness (with and without a database), the OpenAPI spec and docs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm.main import create_app
from tests.auth.support import app_client, app_routes, free_port, make_settings
from tests.conftest import TEST_JWT_SECRET
from tests.helpers import TokenFactory, assert_problem

PROBLEM = "application/problem+json"


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["content-type"] == "application/json"


async def test_ready_with_a_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok"}


async def test_operations_need_no_token(client: httpx.AsyncClient) -> None:
    for path in ("/health", "/ready", "/openapi.json", "/docs"):
        response = await client.get(path, headers={"Authorization": "Bearer garbage"})
        assert response.status_code == 200, path


def unreachable_urls() -> list[str]:
    return [
        f"postgresql://crm@127.0.0.1:{free_port()}/crm",  # nothing listens on the port
        "postgresql://crm@/crm?host=/nonexistent/socket/dir",  # no such Unix socket
    ]


@pytest.fixture(params=["closed-port", "missing-socket"])
async def dead_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    url = unreachable_urls()[0 if request.param == "closed-port" else 1]
    async with app_client(make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET), url) as client:
        yield client


async def test_ready_is_503_without_a_database(dead_db: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await dead_db.get("/ready")
    assert response.status_code == 503
    assert assert_problem(response, 503)["type"] == "urn:crm:problem:not-ready"
    assert time.monotonic() - started < 10
    # Liveness does not depend on the database: the process still runs.
    assert (await dead_db.get("/health")).json() == {"status": "ok"}


async def test_api_without_a_database_is_503_problem_not_500(dead_db: httpx.AsyncClient, tmp_path: Path) -> None:
    headers = TokenFactory(make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET)).headers("admin")
    for response in (
        await dead_db.get("/api/customers", headers=headers),
        await dead_db.post("/api/customers", json={"first_name": "A", "last_name": "B"}, headers=headers),
    ):
        body = assert_problem(response, 503)
        assert body["type"] == "urn:crm:problem:database-unavailable"
        assert response.headers["retry-after"] == "2"
        assert "postgresql" not in response.text
        assert "nonexistent" not in response.text


async def test_ready_recovers_when_the_database_comes_back(tmp_path: Path, database_url: str) -> None:
    # The same app answers 503 while its database is away and 200 once it answers again:
    # point a fresh app at the real database to show the check is per request, not cached.
    dead = unreachable_urls()[0]
    async with app_client(make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET), dead) as client:
        assert (await client.get("/ready")).status_code == 503
    async with app_client(make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET), database_url) as client:
        assert (await client.get("/ready")).status_code == 200
        assert (await client.get("/ready")).status_code == 200


# --- OpenAPI -------------------------------------------------------------------------------------


@pytest.fixture
async def spec(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    data: dict[str, Any] = response.json()
    return data


async def test_openapi_lists_every_route(spec: dict[str, Any], tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET), database_url=unreachable_urls()[0])
    served = {(m, p) for m, p in app_routes(app) if p.startswith("/api/") or p in {"/health", "/ready", "/metrics"}}
    documented = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert served, "no routes found"
    assert served <= documented, served - documented
    # And nothing documented that is not served.
    assert documented <= served, documented - served
    for must in [
        ("GET", "/api/customers"),
        ("POST", "/api/customers"),
        ("GET", "/api/customers/search"),
        ("GET", "/api/customers/segments"),
        ("PUT", "/api/customers/{customer_id}"),
        ("DELETE", "/api/customers/{customer_id}"),
        ("GET", "/api/contacts/customer/{customer_id}"),
        ("PUT", "/api/contacts/{contact_id}/primary"),
        ("GET", "/api/interactions/statistics"),
        ("GET", "/health"),
        ("GET", "/ready"),
    ]:
        assert must in documented, must


async def test_openapi_documents_the_error_responses(spec: dict[str, Any]) -> None:
    problem_ref = "#/components/schemas/Problem"
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) >= {"type", "title", "status", "detail"}
    assert "errors" in problem["properties"]
    checked = 0
    for path, ops in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, op in ops.items():
            responses = op["responses"]
            expected = {"401", "403", "422", "503"}
            if method in {"post", "put", "patch"}:
                expected |= {"400", "413"}
            if "{" in path or method in {"post", "put", "delete"}:
                expected |= {"404"}
            missing = expected - set(responses)
            assert not missing, (method, path, missing)
            for status, response in responses.items():
                if int(status) < 400:
                    continue
                content = response.get("content", {})
                refs = {media.get("schema", {}).get("$ref") for media in content.values()}
                assert problem_ref in refs, (method, path, status, content)
                assert response["description"]
                if status in expected - {"503"}:
                    assert PROBLEM in content, (method, path, status, content)
            # Every route but the operations ones requires the bearer token.
            assert op.get("security"), (method, path)
            checked += 1
    assert checked >= 20
    schemes = spec["components"]["securitySchemes"]
    assert any(s.get("scheme", "").lower() == "bearer" for s in schemes.values())


async def test_openapi_documents_parameters_and_bodies(spec: dict[str, Any]) -> None:
    listing = spec["paths"]["/api/customers"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert names >= {"page", "limit", "status", "type", "ownerId", "search", "sortBy", "sortOrder"}
    create = spec["paths"]["/api/customers"]["post"]
    assert "application/json" in create["requestBody"]["content"]
    assert "201" in create["responses"]
    ready = spec["paths"]["/ready"]["get"]["responses"]
    assert "503" in ready


async def test_docs_serve_html(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in response.text
    assert "/openapi.json" in response.text


async def test_openapi_error_schema_is_under_the_problem_media_type(spec: dict[str, Any]) -> None:
    # Errors are only ever sent as application/problem+json; the spec should say exactly that.
    wrong = [
        (method, path, status, sorted(response.get("content", {})))
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        for status, response in op["responses"].items()
        if int(status) >= 400
        and response.get("content") != {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    ]
    assert wrong == []
