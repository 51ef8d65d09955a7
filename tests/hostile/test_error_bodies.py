"""No stack trace, SQL, driver name or token in any error body: one of every error the API
documents, including those born in the database (constraint violations, an unreachable server).
(A crash's clean 500 is tests/test_errors.py's; every hostile test scans its answers too.)"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from crm.config import Settings
from crm.main import create_app
from tests.helpers import TokenFactory, create_customer, customer_body
from tests.hostile.support import assert_no_leak

JSON = {"Content-Type": "application/json"}


async def test_every_kind_of_error_is_clean(
    client: httpx.AsyncClient, tokens: TokenFactory, admin: dict[str, str], employee: dict[str, str]
) -> None:
    customer = await create_customer(client, admin, email="taken@example.com")
    url = f"/api/customers/{customer['id']}"
    bad_token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2VjcmV0LXNpZ25hdHVyZQ"
    responses = {
        400: await client.post("/api/customers", content=b'{"first_name": ', headers=admin | JSON),
        401: await client.get("/api/customers", headers={"Authorization": f"Bearer {bad_token}"}),
        403: await client.delete(url, headers=employee),
        404: await client.get(f"/api/customers/{uuid.uuid4()}", headers=admin),
        405: await client.patch(url, headers=admin),
        409: await client.post("/api/customers", json=customer_body(email="TAKEN@example.com"), headers=admin),
        412: await client.put(url, json={"city": "X"}, headers=admin | {"If-Match": '"41"'}),
        413: await client.post("/api/customers", content=b" " * (1024 * 1024 + 1), headers=admin | JSON),
        422: await client.post(
            "/api/customers", content=b'{"first_name": "\\ud800", "last_name": "x"}', headers=admin | JSON
        ),
        431: await client.get("/api/customers", headers=admin | {"X-Filler": "x" * 20_000}),
    }
    # A contact that is not the customer's: refused by a database lookup, not by the schema.
    contact = await client.post(
        "/api/interactions",
        json={"customer_id": customer["id"], "contact_id": str(uuid.uuid4()), "type": "call", "subject": "s"},
        headers=admin,
    )
    for status, response in [*responses.items(), (422, contact)]:
        assert response.status_code == status, (status, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), status
        assert_no_leak(response.text, status)
        assert bad_token not in response.text
        assert set(json.loads(response.text)) <= {"type", "title", "status", "detail", "errors", "request_id"}


async def test_database_errors_are_clean(tmp_path: Path, tokens: TokenFactory) -> None:
    """An unreachable database: 503 problems that name no driver, host or SQL."""
    settings = Settings(jwt_secret=tokens.secret, CRM_DATA_DIR=tmp_path, log_format="json", rate_limit_per_minute=0)
    app = create_app(settings, database_url="postgresql://crm:hunter2@127.0.0.1:1/nowhere")
    admin = tokens.headers("admin")
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as http,
    ):
        answers = [
            await http.get("/ready"),
            await http.get("/api/customers", headers=admin),
            await http.post("/api/customers", json=customer_body(), headers=admin),
            await http.get("/api/customers/search", params={"query": "' OR 1=1 --"}, headers=admin),
        ]
    for response in answers:
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert_no_leak(response.text, response.request.url)
        for secret in ("hunter2", "127.0.0.1", "nowhere", "5432", ":1/"):
            assert secret not in response.text, (secret, response.text)
