"""Traces through a real OTLP/HTTP receiver: the request's span named by its route template, a
child span per database statement and per Order Service call, the W3C context continued from
the caller and forwarded to the (real, stub) Order Service, and the ids in the log lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from crm.config import Settings
from crm.main import create_app
from tests.auth.support import capture_logs
from tests.helpers import create_customer
from tests.observability.support import OtlpReceiver, Span, otlp_receiver
from tests.orders.stub import StubOrderService, answer, start_server

SERVER, CLIENT = 2, 3  # the protobuf's SpanKind values


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        for name in [n for n in os.environ if n.startswith("OTEL_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", running.url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        yield running


@pytest.fixture
def stub() -> Iterator[StubOrderService]:
    service = StubOrderService()
    with start_server(service.app(), on_stop=service.stop) as url:
        service.url = url
        yield service


@asynccontextmanager
async def traced_app(settings: Settings, database_url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update=overrides), database_url=database_url)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as http,
    ):
        yield http
    # Leaving the lifespan shut the tracer provider down: every span is exported by now.


def children(spans: list[Span], parent: Span) -> list[Span]:
    return [span for span in spans if span.parent_span_id == parent.span_id]


async def test_a_request_is_one_span_named_by_its_route_with_a_child_per_statement(
    receiver: OtlpReceiver, settings: Settings, database_url: str, admin: dict[str, str]
) -> None:
    async with traced_app(settings, database_url) as http:
        customer = await create_customer(http, admin)
        assert (await http.get(f"/api/customers/{customer['id']}", headers=admin)).status_code == 200
        assert (await http.get("/no/such/path", headers=admin)).status_code == 404

    read = receiver.wait_for("GET /api/customers/{customer_id}")
    assert read.kind == SERVER
    assert read.attributes["http.route"] == "/api/customers/{customer_id}"
    assert read.parent_span_id == ""  # no caller's context: a new trace
    assert read.resource["service.name"] == "crm"
    statements = children(receiver.of_trace(read.trace_id), read)
    assert statements, "no database span under the request's"
    assert all(span.kind == CLIENT and span.attributes.get("db.system") == "postgresql" for span in statements)
    assert any("customers" in str(span.attributes.get("db.statement", "")) for span in statements)

    # The create ran in a transaction: its statements (through SQLAlchemy) are children too.
    create = receiver.wait_for("POST /api/customers")
    names = [span.name for span in children(receiver.of_trace(create.trace_id), create)]
    assert "INSERT" in names
    assert {"BEGIN;", "COMMIT;"} <= set(names)
    # No raw path (with its id) ever names a span; unmatched requests are named by their method.
    assert not [span for span in receiver.spans if customer["id"] in span.name]
    assert receiver.wait_for("GET").attributes.get("http.route") is None


async def test_the_callers_trace_is_continued_and_forwarded_to_the_order_service(
    receiver: OtlpReceiver, settings: Settings, database_url: str, admin: dict[str, str], stub: StubOrderService
) -> None:
    trace_id, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    incoming = {**admin, "traceparent": f"00-{trace_id}-{caller_span}-01", "tracestate": "gateway=abc"}
    async with traced_app(settings, database_url, order_service_url=stub.url) as http:
        customer = await create_customer(http, admin)
        response = await http.get(f"/api/customers/{customer['id']}/orders", headers=incoming)
        assert response.status_code == 200

    server = receiver.wait_for("GET /api/customers/{customer_id}/orders")
    assert server.trace_id == trace_id
    assert server.parent_span_id == caller_span
    (call,) = [
        span for span in children(receiver.of_trace(trace_id), server) if span.kind == CLIENT and span.name == "GET"
    ]
    assert call.attributes.get("http.response.status_code", call.attributes.get("http.status_code")) == 200
    # The stub received the trace: its parent is the CRM's span of that call.
    (seen,) = stub.requests
    assert seen.headers["traceparent"] == f"00-{trace_id}-{call.span_id}-01"
    assert seen.headers["tracestate"] == "gateway=abc"


async def test_log_lines_inside_a_traced_request_carry_its_ids(
    receiver: OtlpReceiver, settings: Settings, database_url: str, admin: dict[str, str], stub: StubOrderService
) -> None:
    stub.script.append(answer(503))  # one retry, logged by the Order Service client
    async with traced_app(settings, database_url, order_service_url=stub.url) as http:
        customer = await create_customer(http, admin)
        with capture_logs() as logs:
            response = await http.get(f"/api/customers/{customer['id']}/orders", headers=admin)
        assert response.status_code == 200
    server = receiver.wait_for("GET /api/customers/{customer_id}/orders")
    lines = [json.loads(line) for line in logs.text.splitlines()]
    retry = next(line for line in lines if line["event"] == "order service call failed, retrying once")
    access = next(line for line in lines if line["event"] == "request" and line["logger"] == "crm.access")
    for line in (retry, access):
        assert line["trace_id"] == server.trace_id
        assert line["span_id"] == server.span_id


def test_off_without_an_exporter_endpoint_nothing_is_installed(tmp_path: Any) -> None:
    """No OTEL_* endpoint: OpenTelemetry is not even imported, and asyncpg is left as it is."""
    code = (
        "import sys, asyncpg, crm.main\n"
        "from crm.config import Settings\n"
        f"crm.main.create_app(Settings(jwt_secret='x' * 40, CRM_DATA_DIR={str(tmp_path)!r}),"
        " database_url='postgresql://nobody@127.0.0.1:1/none')\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'imported'\n"
        "assert not hasattr(asyncpg.connection.Connection.fetch, '__wrapped__'), 'instrumented'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:4318"
    env["OTEL_SDK_DISABLED"] = "true"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
    ],
)
def test_an_exporter_it_cannot_run_is_a_clear_error(
    variables: dict[str, str], message: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm.config import ConfigurationError

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    for name, setting in variables.items():
        monkeypatch.setenv(name, setting)
    with pytest.raises(ConfigurationError, match=message):
        create_app(settings, database_url="postgresql://nobody@127.0.0.1:1/none")
