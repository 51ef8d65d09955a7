"""OpenTelemetry traces, configured by the standard OTEL_* variables (README, "Operating it").

Off unless an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and neither OTEL_SDK_DISABLED=true nor
OTEL_TRACES_EXPORTER=none says otherwise; off, nothing of OpenTelemetry is imported or installed.
On, each worker process gets its own tracer provider exporting over OTLP/HTTP (protobuf) in
batches, and:

- a server span per request (the maintained ASGI middleware, which continues the trace of an
  incoming W3C `traceparent`/`tracestate`), renamed when the request is answered to its method
  and route template (`GET /api/customers/{customer_id}`), as the route is known only then;
- a client span per database statement (the asyncpg instrumentation: the read pool's statements
  and, through SQLAlchemy's asyncpg driver, the transactions' ones);
- a client span per HTTP call of the Order Service client (the httpx instrumentation), which
  also sends the current trace's `traceparent`/`tracestate` to the Order Service;
- the ids of the current span in every log line (crm.log).

Sampling, the service name, resource attributes, exporter headers, timeouts and batching all come
from the SDK's own variables (OTEL_TRACES_SAMPLER, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_*...); the service name defaults to `crm`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm import log
from crm.config import ConfigurationError

if TYPE_CHECKING:
    import httpx
    from opentelemetry.sdk.trace import TracerProvider

_PROTOCOL = "http/protobuf"  # the one exporter installed (opentelemetry-exporter-otlp-proto-http)


def configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces; a setting this service cannot honour is an error."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {e.strip().lower() for e in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if e.strip()}
    if not exporters or exporters == {"none"}:
        return False
    if exporters != {"otlp"}:
        raise ConfigurationError(f"OTEL_TRACES_EXPORTER: only otlp (or none) is supported, not {', '.join(exporters)}")
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint:
        return False
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = environ.get(name, "").strip()
        if protocol:
            if protocol != _PROTOCOL:
                raise ConfigurationError(f"{name}: only {_PROTOCOL} is supported, not {protocol}")
            break
    return True


class Tracing:
    """One worker's tracing: the provider, the middleware, and the instrumentation it installs."""

    def __init__(self, service_version: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({"service.version": service_version})
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: "crm"}))
        # The sampler comes from OTEL_TRACES_SAMPLER(_ARG) (default: parent-based, always on).
        self.provider: TracerProvider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self._asyncpg: Any = None

    def middleware(self) -> list[Middleware]:
        """Outermost, so that the request middleware's lines (the access line) are in the span."""
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        return [
            Middleware(
                OpenTelemetryMiddleware,
                tracer_provider=self.provider,
                # One span per request, not one per ASGI message sent or received.
                exclude_spans=["receive", "send"],
                default_span_details=_method_only,
            ),
            Middleware(_NameByRoute),
        ]

    def start(self, order_service_http: httpx.AsyncClient) -> None:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(order_service_http, tracer_provider=self.provider)
        self._asyncpg = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
        # asyncpg is patched process-wide; `stop` takes it off again.
        self._asyncpg.instrument(tracer_provider=self.provider)
        log.set_trace_ids(_ids_of_current_span())

    def stop(self) -> None:
        log.set_trace_ids(None)
        if self._asyncpg is not None:
            self._asyncpg.uninstrument()
            self._asyncpg = None
        self.provider.shutdown()  # exports what is still batched


def _method_only(scope: Scope) -> tuple[str, dict[str, Any]]:
    # The span's name until the route is known: never the raw path (ids in it).
    return str(scope.get("method", "HTTP")), {}


class _NameByRoute:
    """Names the request's span by its route template once the router has matched it: when the
    answer starts (the ASGI middleware ends the span with the answer's last part)."""

    def __init__(self, app: ASGIApp) -> None:
        from opentelemetry.trace import get_current_span

        self.app = app
        self._current_span = get_current_span

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        span = self._current_span()

        async def naming_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = getattr(scope.get("route"), "path", None)
                if route is not None:
                    span.update_name(f"{scope['method']} {route}")
                    span.set_attribute("http.route", route)
            await send(message)

        await self.app(scope, receive, naming_send)


def _ids_of_current_span() -> Callable[[], tuple[str, str] | None]:
    from opentelemetry.trace import get_current_span

    def ids() -> tuple[str, str] | None:
        """The current span's trace and span ids as W3C writes them (hex), if there is a span."""
        context = get_current_span().get_span_context()
        if not context.is_valid:
            return None
        return format(context.trace_id, "032x"), format(context.span_id, "016x")

    return ids
