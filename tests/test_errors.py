"""Error rendering and request handling: problem+json for everything, request ids, limits, logs."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from crm.api import Call, Routes
from crm.errors import ValidationFailed
from crm.main import create_app
from tests.auth.support import app_client, capture_logs, make_settings, serving
from tests.conftest import TEST_JWT_SECRET
from tests.helpers import TokenFactory, assert_problem, customer_body

MIB = 1024 * 1024
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
JSON = {"Content-Type": "application/json"}


def assert_common_headers(response: httpx.Response) -> str:
    request_id = response.headers["x-request-id"]
    assert request_id
    assert response.headers["x-content-type-options"] == "nosniff"
    return request_id


# --- routing -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/api/nope", "/api/customers/search/extra/deep", "/API/customers"])
async def test_unknown_route_is_404_problem(client: httpx.AsyncClient, path: str, admin: dict[str, str]) -> None:
    response = await client.get(path, headers=admin)
    body = assert_problem(response, 404)
    assert body["type"] == "urn:crm:problem:not-found"
    assert body["detail"] == "no such route"
    assert_common_headers(response)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/health", {"GET"}),
        ("POST", "/ready", {"GET"}),
        ("PATCH", "/api/customers", {"GET", "POST"}),
        ("DELETE", "/api/customers", {"GET", "POST"}),
        ("POST", "/api/customers/segments", {"GET"}),
    ],
)
async def test_wrong_method_is_405_problem(
    client: httpx.AsyncClient, admin: dict[str, str], method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path, headers=admin)
    body = assert_problem(response, 405)
    assert body["type"] == "urn:crm:problem:method-not-allowed"
    # Starlette answers from the first route matching the path, so `Allow` may name a subset.
    named = {m.strip() for m in response.headers["allow"].split(",")}
    assert named & allowed
    assert method not in named
    assert_common_headers(response)


# --- bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"{", b'{"first_name": "A",}', b"{'first_name': 'A'}", b"not json", b'{"a": 1}x'])
async def test_malformed_json_is_400(client: httpx.AsyncClient, admin: dict[str, str], content: bytes) -> None:
    response = await client.post("/api/customers", content=content, headers=admin | JSON)
    body = assert_problem(response, 400, field="body")
    assert body["type"] == "urn:crm:problem:malformed-json"
    assert body["detail"].startswith("malformed JSON")
    assert_common_headers(response)


@pytest.mark.parametrize("content", [b"", b"null", b"[]", b'"text"', b"42", b"true"])
async def test_json_that_is_not_an_object_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], content: bytes
) -> None:
    response = await client.post("/api/customers", content=content, headers=admin | JSON)
    assert_problem(response, 422)


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", json.dumps(customer_body()).encode()),
        ("application/x-www-form-urlencoded", b"first_name=A&last_name=B"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--\r\n"),
        ("application/xml", b"<customer/>"),
        ("application/json; charset=latin-1", b'{"first_name": "\xe9"}'),
        ("", json.dumps(customer_body()).encode()),
    ],
)
async def test_wrong_content_type_is_4xx(
    client: httpx.AsyncClient, admin: dict[str, str], content_type: str, content: bytes
) -> None:
    response = await client.post("/api/customers", content=content, headers=admin | {"Content-Type": content_type})
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_nothing_was_stored_by_the_refused_bodies(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await client.post("/api/customers", content=b"{", headers=admin | JSON)
    await client.post("/api/customers", content=b"first_name=A", headers=admin | {"Content-Type": "text/plain"})
    listed = await client.get("/api/customers", headers=admin)
    assert listed.json()["pagination"]["total"] == 0


@pytest.mark.parametrize("field", ["first_name", "last_name", "company_name", "notes", "city", "phone"])
async def test_nul_bytes_in_string_fields_are_422(client: httpx.AsyncClient, admin: dict[str, str], field: str) -> None:
    response = await client.post("/api/customers", json=customer_body(**{field: "Iv\x00an"}), headers=admin)
    body = assert_problem(response, 422, field=field)
    assert "NUL" in body["detail"]


async def test_nul_bytes_in_query_and_path_are_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    assert_problem(await client.get("/api/customers", params={"search": "Iv\x00an"}, headers=admin), 422, "search")
    assert_problem(await client.get("/api/customers/search", params={"query": "a\x00b"}, headers=admin), 422, "query")
    assert_problem(await client.get("/api/customers/%00", headers=admin), 422, "customer_id")


@pytest.mark.parametrize(
    "content",
    [
        b'{"first_name": "\xff\xfe", "last_name": "B"}',
        b'{"first_name": "\xc3\x28", "last_name": "B"}',
        b'{"first_name": "A", "last_name": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8
        "\u0000".encode("utf-16"),
    ],
)
async def test_invalid_utf8_is_4xx_not_500(client: httpx.AsyncClient, admin: dict[str, str], content: bytes) -> None:
    response = await client.post("/api/customers", content=content, headers=admin | JSON)
    assert response.status_code in {400, 422}, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("field", ["first_name", "last_name", "notes", "company_name"])
@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "x\\udc00y"])
async def test_lone_surrogate_escapes_are_422_not_500(
    client: httpx.AsyncClient, admin: dict[str, str], field: str, escape: str
) -> None:
    # Valid JSON and valid UTF-8, but the string cannot be stored as UTF-8 text.
    body = json.dumps(customer_body(notes="n", company_name="c"))
    content = body.replace(f'"{field}": "', f'"{field}": "{escape}', 1).encode()
    assert escape.encode() in content
    response = await client.post("/api/customers", content=content, headers=admin | JSON)
    assert_problem(response, 422)
    listed = await client.get("/api/customers", headers=admin)
    assert listed.json()["pagination"]["total"] == 0


async def test_utf8_bom_is_tolerated(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    content = b"\xef\xbb\xbf" + json.dumps(customer_body(first_name="Bom")).encode()
    response = await client.post("/api/customers", content=content, headers=admin | JSON)
    assert response.status_code == 201, response.text
    assert response.json()["first_name"] == "Bom"


@pytest.mark.parametrize("depth", [100, 10_000, 200_000])
@pytest.mark.parametrize("where", ["field", "unknown", "top"])
async def test_deeply_nested_json_is_not_500(
    client: httpx.AsyncClient, admin: dict[str, str], depth: int, where: str
) -> None:
    nested = "[" * depth + "]" * depth
    content = {
        "field": f'{{"first_name": {nested}, "last_name": "B"}}',
        "unknown": f'{{"first_name": "A", "last_name": "B", "extra": {nested}}}',
        "top": nested,
    }[where].encode()
    assert len(content) < MIB
    response = await client.post("/api/customers", content=content, headers=admin | JSON)
    assert response.status_code in {400, 422}, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_json_numbers_out_of_range_are_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    content = b'{"first_name": 1e999, "last_name": -1e999}'
    response = await client.post("/api/customers", content=content, headers=admin | JSON)
    assert_problem(response, 422, field="first_name")


async def test_unknown_and_read_only_fields_are_named(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post(
        "/api/customers", json=customer_body(id=str(uuid.uuid4()), favourite_colour="blue"), headers=admin
    )
    body = assert_problem(response, 422, field="id")
    messages = {e["field"]: e["message"] for e in body["errors"]}
    assert messages == {"id": "read-only field", "favourite_colour": "unknown field"}


@pytest.mark.parametrize(("params", "field"), [({"page": "abc"}, "page"), ({"limit": "1000"}, "limit")])
async def test_bad_query_parameters_are_422(
    client: httpx.AsyncClient, admin: dict[str, str], params: dict[str, str], field: str
) -> None:
    assert_problem(await client.get("/api/customers", params=params, headers=admin), 422, field)


# --- body size ---------------------------------------------------------------------------


def padded_customer(size: int) -> bytes:
    """A valid customer body padded with JSON whitespace to exactly `size` bytes."""
    body = json.dumps({"first_name": "Big", "last_name": "Body"}).encode()
    return body + b" " * (size - len(body))


async def test_body_of_exactly_one_mib_is_accepted(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post("/api/customers", content=padded_customer(MIB), headers=admin | JSON)
    assert response.status_code == 201, response.text


async def test_body_over_one_mib_with_content_length_is_413(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    content = padded_customer(MIB + 1)
    response = await client.post("/api/customers", content=content, headers=admin | JSON)
    assert response.request.headers["content-length"] == str(MIB + 1)
    body = assert_problem(response, 413)
    assert body["type"] == "urn:crm:problem:payload-too-large"
    assert str(MIB) in body["detail"]
    assert_common_headers(response)
    listed = await client.get("/api/customers", headers=admin)
    assert listed.json()["pagination"]["total"] == 0


async def chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    body = padded_customer(total)
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_chunked_body_over_one_mib_is_413(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post("/api/customers", content=chunks(MIB + 1), headers=admin | JSON)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    body = assert_problem(response, 413)
    assert body["type"] == "urn:crm:problem:payload-too-large"
    assert_common_headers(response)
    listed = await client.get("/api/customers", headers=admin)
    assert listed.json()["pagination"]["total"] == 0


async def test_chunked_body_within_the_limit_is_accepted(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post("/api/customers", content=chunks(MIB), headers=admin | JSON)
    assert response.status_code == 201, response.text


async def test_huge_declared_length_is_refused_before_reading(client: httpx.AsyncClient) -> None:
    # No auth, no body actually sent: the limit is checked before anything else.
    response = await client.post("/api/customers", content=b"{}", headers={"Content-Length": str(10 * 1024**3), **JSON})
    assert_problem(response, 413)


# --- request id and headers ----------------------------------------------------------------


async def test_request_id_is_echoed(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for rid in ("abc-123", "trace:0af7651916cd43dd8448eb211c80319c", "a" * 128, str(uuid.uuid4())):
        response = await client.get("/api/customers", headers=admin | {"X-Request-ID": rid})
        assert response.status_code == 200
        assert response.headers["x-request-id"] == rid


async def test_request_id_is_generated_and_unique(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/health")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5
    assert all(GENERATED_ID.fullmatch(i) for i in ids)


@pytest.mark.parametrize(
    "hostile",
    [
        b"a" * 129,
        b"x" * 10_000,
        b"abc\x01def",
        b"abc\x1b[31mred",
        b"abc\tdef",
        b"abc def",
        b"abc\ndef",
        b"abc\n",
        b"id\r\nSet-Cookie: a=b",
        b"caf\xc3\xa9",
        b"<script>",
        b"",
    ],
)
async def test_hostile_request_id_is_replaced(client: httpx.AsyncClient, hostile: bytes) -> None:
    response = await client.get("/health", headers={b"X-Request-ID": hostile})
    assert response.status_code == 200
    echoed = response.headers["x-request-id"]
    assert echoed.encode() != hostile
    assert GENERATED_ID.fullmatch(echoed)
    assert "set-cookie" not in response.headers


async def test_every_kind_of_response_carries_the_headers(
    client: httpx.AsyncClient, admin: dict[str, str], tokens: TokenFactory
) -> None:
    rid = {"X-Request-ID": "req-42"}
    responses = [
        await client.get("/health", headers=rid),
        await client.get("/ready", headers=rid),
        await client.get("/openapi.json", headers=rid),
        await client.get("/docs", headers=rid),
        await client.get("/api/customers", headers=admin | rid),
        await client.post("/api/customers", json=customer_body(), headers=admin | rid),
        await client.get("/api/customers", headers=rid),  # 401
        await client.get("/api/customers", headers=rid | {"Authorization": "Bearer x.y.z"}),  # 401
        await client.delete(f"/api/customers/{uuid.uuid4()}", headers=tokens.headers("employee") | rid),
        await client.get(f"/api/customers/{uuid.uuid4()}", headers=admin | rid),  # 404
        await client.get("/api/customers/not-a-uuid", headers=admin | rid),  # 422
        await client.get("/nowhere", headers=rid),  # 404
        await client.put("/health", headers=rid),  # 405
        await client.post("/api/customers", content=b"{", headers=admin | rid | JSON),  # 400
        await client.post("/api/customers", content=padded_customer(MIB + 1), headers=admin | rid | JSON),  # 413
    ]
    assert [r.status_code for r in responses] == [
        200,
        200,
        200,
        200,
        200,
        201,
        401,
        401,
        403,
        404,
        422,
        404,
        405,
        400,
        413,
    ]
    for response in responses:
        assert assert_common_headers(response) == "req-42", response.request.url
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["request_id"] == "req-42"


# --- unexpected failures -------------------------------------------------------------------


@pytest.fixture
async def crashing(tmp_path: Path, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The real app plus throwaway routes that fail in ways no handler expects."""
    app: Starlette = create_app(make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET), database_url=database_url)
    throwaway = Routes(tag="test")

    @throwaway.get("/boom", summary="boom", permission=None, errors={})
    async def boom(call: Call[Any, None]) -> Response:
        raise RuntimeError("secret internals: password=hunter2 SELECT * FROM customers")

    class Payload(BaseModel):
        a: int

    @throwaway.post("/boom-after-body", summary="boom", permission=None, errors={}, body=Payload)
    async def boom_after_body(call: Call[Any, Payload]) -> Response:
        raise KeyError(f"no key {call.body}")

    @throwaway.get("/boom-in-a-thread", summary="boom", permission=None, errors={})
    async def boom_in_a_thread(call: Call[Any, None]) -> Response:
        def divide() -> Response:
            raise ZeroDivisionError("handler work in the thread pool")

        return await run_in_threadpool(divide)

    @throwaway.get("/expected", summary="expected", permission=None, errors={})
    async def expected(call: Call[Any, None]) -> Response:
        raise ValidationFailed.field("thing", "is not right")

    app.router.routes[:0] = [endpoint.route() for endpoint in throwaway.endpoints]
    async with serving(app) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "leak"),
    [
        ("GET", "/boom", "hunter2"),
        ("POST", "/boom-after-body", "no key"),
        ("GET", "/boom-in-a-thread", "thread pool"),
    ],
)
async def test_unexpected_exception_is_a_clean_500(
    crashing: httpx.AsyncClient, method: str, path: str, leak: str
) -> None:
    with capture_logs() as logs:
        response = await crashing.request(method, path, json={"a": 1} if method == "POST" else None)
    body = assert_problem(response, 500)
    request_id = assert_common_headers(response)
    assert body["request_id"] == request_id
    assert request_id in body["detail"]
    assert body["type"] == "urn:crm:problem:internal-server-error"
    for text in (leak, "Traceback", "RuntimeError", "KeyError", "ZeroDivisionError", 'File "', "SELECT"):
        assert text not in response.text
    # The crash is logged, with the request id and the traceback, for whoever quotes the id.
    (crash,) = [r for r in logs.records() if r.get("level") == "error"]
    assert crash["request_id"] == request_id
    assert crash["event"] == "unhandled error"
    assert crash["path"] == path
    assert leak in crash["exception"]
    assert "Traceback" in crash["exception"]
    (access,) = logs.events("request")
    assert access["status"] == 500
    assert access["request_id"] == request_id


async def test_expected_errors_are_not_logged_as_crashes(crashing: httpx.AsyncClient) -> None:
    with capture_logs() as logs:
        response = await crashing.get("/expected")
    assert_problem(response, 422, field="thing")
    assert [r for r in logs.records() if r.get("level") in {"error", "critical"}] == []


# --- access log ------------------------------------------------------------------------------


async def test_one_access_log_line_per_request(
    client: httpx.AsyncClient, tokens: TokenFactory, admin: dict[str, str]
) -> None:
    user_id = uuid.uuid4()
    manager = tokens.headers("manager", user_id)
    with capture_logs() as logs:
        await client.get("/health", headers={"X-Request-ID": "r-health"})
        await client.post("/api/customers", json=customer_body(), headers=manager | {"X-Request-ID": "r-create"})
        await client.get("/api/customers", headers={"X-Request-ID": "r-anon"})
        await client.get("/api/customers/not-a-uuid", headers=manager | {"X-Request-ID": "r-bad"})
        await client.post("/api/customers", content=chunks(MIB + 1), headers=manager | {"X-Request-ID": "r-big"})

    # Not the lines of background jobs (the events relay says when it starts leading), which
    # belong to no request.
    lines = [r for r in logs.records() if r.get("logger") not in {"httpx", "crm.events.relay"}]
    access = [r for r in lines if r.get("event") == "request"]
    assert [r["request_id"] for r in access] == ["r-health", "r-create", "r-anon", "r-bad", "r-big"]
    expected = [
        ("GET", "/health", 200, None),
        ("POST", "/api/customers", 201, str(user_id)),
        ("GET", "/api/customers", 401, None),
        ("GET", "/api/customers/not-a-uuid", 422, str(user_id)),
        # The token is checked before the body is read (and refused).
        ("POST", "/api/customers", 413, str(user_id)),
    ]
    for record, (method, path, status, uid) in zip(access, expected, strict=True):
        assert record["method"] == method
        assert record["path"] == path
        assert record["status"] == status
        assert record["user_id"] == uid
        assert isinstance(record["duration_ms"], float | int)
        assert 0 <= record["duration_ms"] < 10_000
        assert record["level"] == "info"
        assert record["logger"] == "crm.access"
        assert record["timestamp"].endswith("Z")
    # Every line the service wrote is a JSON object carrying the request id of its request.
    assert all("request_id" in r for r in lines)


async def test_console_log_format_is_not_json(tmp_path: Path, database_url: str) -> None:
    async with app_client(make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET, log_format="console"), database_url) as c:
        with capture_logs() as logs:
            await c.get("/health")
    assert "request" in logs.text
    with pytest.raises(json.JSONDecodeError):
        json.loads(logs.text.splitlines()[0])
