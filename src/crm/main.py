"""Application factory: settings, lifespan resources, middleware, endpoints, error handlers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import structlog
from pydantic import BaseModel
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm.api import Answer, Call, Endpoint, Routes
from crm.api.openapi import document, swagger_ui
from crm.api.routing import ShapeRouter
from crm.auth.tokens import TokenVerifier
from crm.common.openapi import problem_doc
from crm.common.responses import json_response
from crm.config import Settings, get_settings
from crm.contacts.router import routes as contacts_routes
from crm.customers.router import routes as customers_routes
from crm.db.reads import create_read_pool
from crm.db.transaction import create_engine, create_sessionmaker
from crm.erasure import service as erasure
from crm.erasure.router import routes as erasure_routes
from crm.errors import install_error_handlers, problem_response
from crm.events.relay import Relay
from crm.events.router import routes as events_routes
from crm.history.router import routes as history_routes
from crm.interactions.router import routes as interactions_routes
from crm.log import configure_logging
from crm.middleware import RequestContextMiddleware
from crm.observability import metrics, tracing
from crm.observability.pools import ObservedEnginePool, ObservedReadPool
from crm.observability.router import routes as observability_routes
from crm.orders.client import OrderServiceClient
from crm.orders.consumer import OrderEventsConsumer
from crm.orders.router import routes as orders_routes
from crm.ratelimit.service import create_limiter
from crm.trash import service as trash
from crm.trash.router import routes as trash_routes
from crm.webhooks.dispatcher import Dispatcher
from crm.webhooks.router import routes as webhooks_routes

TITLE = "CRM service"
VERSION = "1.0.0"
API_DESCRIPTION = """
The CRM service: customers, their contacts, and the interactions staff have with them.

Every `/api/...` route needs `Authorization: Bearer <access token>` issued by the Auth Service.
Errors are `application/problem+json` (RFC 9457).
"""

log = structlog.get_logger("crm.main")

operations = Routes(tag="operations")

# The request middleware can refuse any request before routing: documented on these routes too.
_REFUSED: dict[int | str, dict[str, Any]] = {
    413: problem_doc("Request body larger than 1 MiB"),
    431: problem_doc("Request headers larger than 16 KiB in all"),
}


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str


@operations.get(
    "/health", summary="Liveness: the process runs", permission=None, answer=Answer(model=Health), errors=_REFUSED
)
async def health(call: Call[Any, None]) -> Response:
    del call
    return json_response(b'{"status":"ok"}')


@operations.get(
    "/ready",
    summary="Readiness: the database answers",
    permission=None,
    answer=Answer(model=Readiness),
    errors={**_REFUSED, 503: problem_doc("The database does not answer")},
)
async def ready(call: Call[Any, None]) -> Response:
    try:
        async with call.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return problem_response(
            503, f"the database does not answer ({type(exc).__name__})", slug="not-ready", headers={"Retry-After": "2"}
        )
    return json_response(b'{"status":"ready","database":"ok"}')


# Fixed paths before the `/{id}` ones of the same prefix, which would otherwise capture them:
# each feature declares its own in that order, and orders' `/{id}/orders` cannot clash.
ENDPOINTS: tuple[Endpoint, ...] = (
    *operations.endpoints,
    *observability_routes.endpoints,
    *customers_routes.endpoints,
    *orders_routes.endpoints,
    *contacts_routes.endpoints,
    *interactions_routes.endpoints,
    *history_routes.endpoints,
    *trash_routes.endpoints,
    *erasure_routes.endpoints,
    *events_routes.endpoints,
    *webhooks_routes.endpoints,
)


def _start_metrics(app: Starlette, settings: Settings) -> asyncio.Task[None]:
    """Observe the pools (from outside: crm.db makes them) and publish the sampled figures."""
    pools = (
        ObservedEnginePool(app.state.engine, settings.db_pool_size + settings.db_max_overflow),
        ObservedReadPool(app.state.read_pool, settings.db_pool_size),
    )
    app.state.read_pool = pools[1]
    app.state.metrics = metrics.Publisher(pools, lambda: _breaker_open(app))
    return asyncio.create_task(app.state.metrics.run(), name="crm-metrics")


def _breaker_open(app: Starlette) -> bool:
    client: OrderServiceClient | None = getattr(app.state, "order_client", None)
    return client is not None and client.breaker.opened_at is not None


def _start_order_events(app: Starlette, settings: Settings) -> OrderEventsConsumer | None:
    """The order events consumer, beside the requests on the same engine; off unless configured."""
    if not settings.order_events_amqp_url:
        return None
    consumer = OrderEventsConsumer(
        app.state.sessionmaker,
        settings.order_events_amqp_url,
        exchange=settings.order_events_exchange,
        queue=settings.order_events_queue,
        prefetch=settings.order_events_prefetch,
    )
    consumer.start()
    return consumer


def _start_purge(app: Starlette, settings: Settings) -> asyncio.Task[None] | None:
    """The trash's purge every CRM_TRASH_PURGE_INTERVAL seconds (one instance at a time: the
    purge's advisory lock); off at 0, leaving it to `crm purge`."""
    if settings.trash_purge_interval <= 0:
        return None

    async def run() -> None:
        while True:
            await asyncio.sleep(settings.trash_purge_interval)
            try:
                await trash.purge(app.state.engine, settings.trash_days, settings.trash_purge_batch)
            except Exception:  # the next run tries again; the service keeps serving
                log.exception("trash purge failed")

    return asyncio.create_task(run(), name="crm-trash-purge")


async def _stop(*tasks: asyncio.Task[None] | None) -> None:
    for task in tasks:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _start_relay(settings: Settings, url: str) -> Relay | None:
    """The events relay of this process: it leads (publishes) or waits for the lock; off if configured so."""
    if not settings.events_relay_enabled:
        return None
    relay = Relay(settings, url)
    relay.start()
    return relay


async def _stop_brokered(consumer: OrderEventsConsumer | None, relay: Relay | None) -> None:
    if consumer is not None:
        await consumer.stop()
    if relay is not None:
        await relay.stop()


def _start_webhooks(app: Starlette, settings: Settings) -> Dispatcher | None:
    """The webhook dispatcher: on in every instance unless turned off (they share the deliveries)."""
    if not settings.webhook_dispatcher_enabled:
        return None
    dispatcher = Dispatcher(app.state.sessionmaker, settings)
    dispatcher.start()
    return dispatcher


def _middleware(settings: Settings, traces: tracing.Tracing | None) -> list[Middleware]:
    """What every request passes before its route, outermost first."""
    middleware = [
        # The request's span around everything, so that every line of the request is in it.
        *(traces.middleware() if traces is not None else ()),
        # Counts what the request middleware answers too (413, 431, the last-resort 500).
        *((Middleware(metrics.RequestMetrics),) if settings.metrics_enabled else ()),
        # It sees (and stamps) every response, CORS's own answers included.
        Middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes),
    ]
    if settings.cors_origin_list:
        # Off unless origins are listed; then only those, and credentials only by header.
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origin_list,
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "If-Match", "Idempotency-Key", "X-Request-ID"],
                expose_headers=[
                    "ETag",
                    "Location",
                    "X-Request-ID",
                    "Idempotent-Replayed",
                    "Retry-After",
                    "RateLimit",
                    "RateLimit-Policy",
                ],
            )
        )
    return middleware


def create_app(settings: Settings | None = None, *, database_url: str | None = None) -> Starlette:
    settings = settings or get_settings()
    settings.check_production()
    configure_logging(settings.log_level, settings.log_format)
    url = database_url or settings.database_url
    if url is None:
        raise RuntimeError("no database configured: run through `crm serve` or set DATABASE_URL")
    # Off (nothing of OpenTelemetry installed) unless OTEL_* names an exporter endpoint.
    traces = tracing.Tracing(VERSION) if tracing.configured() else None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings, url)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.read_pool = await create_read_pool(settings, url)
        sampler = _start_metrics(app, settings) if settings.metrics_enabled else None
        # One pooled HTTP client for the Order Service per process; the breaker state lives
        # with it, so each worker process trips its own breaker.
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.order_service_timeout),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            follow_redirects=False,
        )
        app.state.order_client = OrderServiceClient(http, settings.order_service_url, settings.order_service_timeout)
        if traces is not None:
            traces.start(http)
        consumer = app.state.order_events_consumer = _start_order_events(app, settings)
        purger = _start_purge(app, settings)
        relay = app.state.events_relay = _start_relay(settings, url)
        webhooks = app.state.webhook_dispatcher = _start_webhooks(app, settings)
        # Everything built so far (modules, routes, schemas, the ORM's registry) lives as long
        # as the process: move it out of the collector's sight, so that full collections only
        # walk what requests allocate. Without this, each one walked the whole framework and
        # showed up as the slowest 1% of requests.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 50, 100)
        try:
            yield
        finally:
            await _stop(sampler, purger)
            if traces is not None:
                traces.stop()
            await _stop_brokered(consumer, relay)
            if webhooks is not None:
                await webhooks.stop()
            await http.aclose()
            await app.state.rate_limiter.counter.close()
            await app.state.read_pool.close()
            await engine.dispose()

    spec = document(ENDPOINTS, title=TITLE, version=VERSION, description=API_DESCRIPTION)

    async def openapi_json(_: Request) -> Response:
        return JSONResponse(spec)

    async def docs(_: Request) -> Response:
        return swagger_ui("/openapi.json", TITLE)

    middleware = _middleware(settings, traces)
    routes = [
        *(endpoint.route() for endpoint in ENDPOINTS),
        Route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False),
        Route("/docs", docs, methods=["GET"], include_in_schema=False),
    ]
    app = Starlette(middleware=middleware, lifespan=lifespan)
    # A trailing slash is a 404 problem like any unknown path, not a 307 to a URL built from
    # the caller's Host header.
    app.router = ShapeRouter(routes, lifespan=lifespan, redirect_slashes=False)
    app.state.settings = settings
    app.state.openapi = spec
    app.state.token_verifier = TokenVerifier(settings)
    app.state.rate_limiter = create_limiter(settings.rate_limit_per_minute, settings.redis_url)
    # A 404 for an id an erasure removed is answered 410 (looked up only on a miss).
    install_error_handlers(app, erased_lookup=erasure.erased_one)
    return app
