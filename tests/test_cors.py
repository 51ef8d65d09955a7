"""CORS (off unless CORS_ORIGINS lists origins, then only those) and X-Content-Type-Options."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from crm.config import Settings
from crm.main import create_app
from tests.conftest import TEST_JWT_SECRET
from tests.helpers import assert_problem, create_customer

LISTED = "https://a.example"
ALSO_LISTED = "https://b.example"
PREFLIGHT_HEADERS = "authorization, content-type, if-match, idempotency-key, x-request-id"


def _preflight(origin: str, method: str = "PUT") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": PREFLIGHT_HEADERS,
    }


def _cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


@pytest.fixture
async def cors_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The app configured the way an operator would: CORS_ORIGINS in the environment."""
    monkeypatch.setenv("CORS_ORIGINS", f" {LISTED} ,{ALSO_LISTED},")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        jwt_secret=TEST_JWT_SECRET,
        CRM_DATA_DIR=tmp_path,
        rate_limit_per_minute=0,
    )
    assert settings.cors_origin_list == [LISTED, ALSO_LISTED]
    app = create_app(settings, database_url=database_url)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as http,
    ):
        yield http


async def test_cors_is_off_by_default(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)

    simple = await client.get(f"/api/customers/{customer['id']}", headers={**admin, "Origin": LISTED})
    preflight = await client.options(f"/api/customers/{customer['id']}", headers=_preflight(LISTED))

    assert simple.status_code == 200
    assert _cors_headers(simple) == {}
    assert preflight.status_code == 405
    assert _cors_headers(preflight) == {}


@pytest.mark.parametrize("origin", [LISTED, ALSO_LISTED])
async def test_preflight_from_a_listed_origin_is_allowed(cors_client: httpx.AsyncClient, origin: str) -> None:
    response = await cors_client.options("/api/customers/any", headers=_preflight(origin))

    assert response.status_code == 200, response.text
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")} >= {
        "GET",
        "POST",
        "PUT",
        "DELETE",
    }
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed >= {"authorization", "content-type", "if-match", "idempotency-key", "x-request-id"}
    # Tokens travel in the Authorization header, never in cookies: no credentialed CORS.
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "origin",
    [
        "https://c.example",
        "http://a.example",  # another scheme is another origin
        "https://a.example:8443",
        "https://a.example.evil.test",
        "https://sub.a.example",
        "null",
    ],
)
async def test_preflight_from_any_other_origin_is_refused(cors_client: httpx.AsyncClient, origin: str) -> None:
    response = await cors_client.options("/api/customers/any", headers=_preflight(origin))

    assert response.status_code == 400
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_preflight_for_a_method_outside_the_list_is_refused(cors_client: httpx.AsyncClient) -> None:
    response = await cors_client.options("/api/customers/any", headers=_preflight(LISTED, "TRACE"))

    assert response.status_code == 400


async def test_listed_origin_reads_responses_and_their_headers(
    cors_client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await cors_client.post(
        "/api/customers",
        json={"first_name": "Cross", "last_name": "Origin"},
        headers={**admin, "Origin": ALSO_LISTED},
    )
    assert created.status_code == 201
    assert created.headers["Access-Control-Allow-Origin"] == ALSO_LISTED
    assert "Origin" in created.headers["Vary"]
    exposed = {h.strip().lower() for h in created.headers["Access-Control-Expose-Headers"].split(",")}
    # What a browser client needs to make the safe-writes protocol work: the tag for If-Match,
    # where the record is, the id to quote, and whether a POST was a replay.
    assert exposed >= {"etag", "location", "x-request-id", "idempotent-replayed"}

    got = await cors_client.get(created.headers["Location"], headers={**admin, "Origin": LISTED})
    assert got.headers["Access-Control-Allow-Origin"] == LISTED
    assert got.headers["ETag"] == '"1"'

    # Errors are readable too, or a browser client could not show why a write failed.
    stale = await cors_client.put(
        created.headers["Location"], json={"notes": "x"}, headers={**admin, "Origin": LISTED, "If-Match": '"9"'}
    )
    assert_problem(stale, 412)
    assert stale.headers["Access-Control-Allow-Origin"] == LISTED


async def test_other_origin_gets_no_cors_headers(cors_client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await cors_client.get("/api/customers", headers={**admin, "Origin": "https://c.example"})

    # The server answers (CORS is enforced by browsers), but without granting the origin anything.
    assert response.status_code == 200
    # (Starlette still lists the exposed headers; without Allow-Origin a browser ignores that.)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Credentials" not in response.headers


async def test_nosniff_on_success_and_error_responses(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    url = f"/api/customers/{customer['id']}"
    responses = {
        "health": await client.get("/health"),
        "read": await client.get(url, headers=admin),
        "create": await client.post("/api/customers", json={"first_name": "A", "last_name": "B"}, headers=admin),
        "delete": await client.delete(url, headers={**admin, "If-Match": '"1"'}),
        "unauthenticated": await client.get("/api/customers"),
        "not found": await client.get(url, headers=admin),
        "invalid": await client.post("/api/customers", json={}, headers=admin),
        "stale": await client.put(
            f"/api/customers/{(await create_customer(client, admin))['id']}",
            json={"notes": "x"},
            headers={**admin, "If-Match": '"2"'},
        ),
        "no route": await client.get("/nowhere"),
    }

    statuses = {name: r.status_code for name, r in responses.items()}
    assert statuses == {
        "health": 200,
        "read": 200,
        "create": 201,
        "delete": 204,
        "unauthenticated": 401,
        "not found": 404,
        "invalid": 422,
        "stale": 412,
        "no route": 404,
    }
    for name, response in responses.items():
        assert response.headers.get("X-Content-Type-Options") == "nosniff", name
