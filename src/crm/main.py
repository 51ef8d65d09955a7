"""Application factory: settings, lifespan resources, middleware, routers, error handlers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import text

from crm.auth.tokens import TokenVerifier
from crm.common.openapi import install_problem_schema, problem_doc
from crm.config import Settings, get_settings
from crm.contacts.router import router as contacts_router
from crm.customers import fast_create as customer_create
from crm.customers import fast_read as customer_reads
from crm.customers import fast_search as customer_search
from crm.customers.router import router as customers_router
from crm.db import create_engine, create_read_pool, create_sessionmaker
from crm.errors import install_error_handlers, problem_response
from crm.fastpath import FastPath
from crm.interactions import fast_read as interaction_reads
from crm.interactions.router import router as interactions_router
from crm.log import configure_logging
from crm.middleware import RequestContextMiddleware
from crm.orders.client import OrderServiceClient
from crm.orders.router import router as orders_router
from crm.ratelimit.dependencies import rate_limit
from crm.ratelimit.service import create_limiter

API_DESCRIPTION = """
The CRM service: customers, their contacts, and the interactions staff have with them.

Every `/api/...` route needs `Authorization: Bearer <access token>` issued by the Auth Service.
Errors are `application/problem+json` (RFC 9457).
"""


def create_app(settings: Settings | None = None, *, database_url: str | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.check_production()
    configure_logging(settings.log_level, settings.log_format)
    url = database_url or settings.database_url
    if url is None:
        raise RuntimeError("no database configured: run through `crm serve` or set DATABASE_URL")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings, url)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.read_pool = await create_read_pool(settings, url)
        # One pooled HTTP client for the Order Service per process; the breaker state lives
        # with it, so each worker process trips its own breaker.
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.order_service_timeout),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            follow_redirects=False,
        )
        app.state.order_client = OrderServiceClient(http, settings.order_service_url, settings.order_service_timeout)
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
            await http.aclose()
            await app.state.rate_limiter.counter.close()
            await app.state.read_pool.close()
            await engine.dispose()

    app = FastAPI(
        title="CRM service",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        # A trailing slash is a 404 problem like any unknown path, not a 307 to a URL built
        # from the caller's Host header.
        redirect_slashes=False,
        # No OpenTelemetry here (logs carry the request id instead); left on, FastAPI asks the
        # global tracer, meter and logger providers whether they are configured on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(settings)
    app.state.rate_limiter = create_limiter(settings.rate_limit_per_minute, settings.redis_url)
    # Innermost: CORS and the request middleware wrap its answers like any other.
    app.add_middleware(
        FastPath,
        reads=[*customer_reads.READS, *customer_search.READS, *interaction_reads.READS],
        creates=customer_create.CREATES,
    )
    if settings.cors_origin_list:
        # Off unless origins are listed; then only those, and credentials only by header.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
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
    # Added last, so it is the outermost: it sees (and stamps) every response.
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    install_problem_schema(app)

    # The middleware can refuse any request before routing: document it on these routes too.
    refused: dict[int | str, dict[str, Any]] = {
        413: problem_doc("Request body larger than 1 MiB"),
        431: problem_doc("Request headers larger than 16 KiB in all"),
    }

    @app.get("/health", tags=["operations"], summary="Liveness: the process runs", responses=refused)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        tags=["operations"],
        summary="Readiness: the database answers",
        responses={**refused, 503: problem_doc("The database does not answer")},
    )
    async def ready(request: Request) -> Any:
        try:
            async with request.app.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            return problem_response(
                503,
                f"the database does not answer ({type(exc).__name__})",
                slug="not-ready",
                headers={"Retry-After": "2"},
            )
        return {"status": "ready", "database": "ok"}

    # Every /api route is rate limited per user (after authentication, which it depends on).
    limited = [Depends(rate_limit)]
    app.include_router(customers_router, dependencies=limited)
    app.include_router(orders_router, dependencies=limited)
    app.include_router(contacts_router, dependencies=limited)
    app.include_router(interactions_router, dependencies=limited)
    return app
