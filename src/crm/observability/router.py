"""GET /metrics: the Prometheus text format, for the whole instance (crm.observability.metrics).

Internal, like /health and /ready: no JWT and no rate limit (permission=None); a bearer token
when METRICS_TOKEN is set. Operators keep it off the public gateway (README, "Operating it").
"""

from __future__ import annotations

import hmac
from typing import Any

import anyio.to_thread
from starlette.responses import Response

from crm.api import Answer, Call, Routes
from crm.common.openapi import problem_doc
from crm.errors import NotFound, Unauthorized
from crm.observability import metrics

routes = Routes(tag="operations")


@routes.get(
    "/metrics",
    summary="Metrics of the whole instance, in the Prometheus text format (internal)",
    permission=None,
    answer=Answer(model=str, media_type="text/plain"),
    errors={
        401: problem_doc("METRICS_TOKEN is set and the request does not bear it"),
        404: problem_doc("METRICS_ENABLED is false"),
    },
)
async def scrape(call: Call[Any, None]) -> Response:
    settings = call.settings
    if not settings.metrics_enabled:
        raise NotFound("metrics are off (METRICS_ENABLED=false)")
    if settings.metrics_token is not None:
        presented = call.header(b"authorization")
        if presented is None:
            raise Unauthorized("/metrics needs the METRICS_TOKEN as a bearer token", error=None)
        if not _bears(presented, settings.metrics_token):
            raise Unauthorized("the bearer token is not the METRICS_TOKEN")
    publisher: metrics.Publisher | None = getattr(call.state, "metrics", None)
    if publisher is not None:
        publisher.publish()  # this worker's figures as of now; the other workers' are a second old at most
    # Reading every worker's files is file I/O: off the event loop.
    body = await anyio.to_thread.run_sync(metrics.render)
    return Response(body, media_type=metrics.CONTENT_TYPE)


def _bears(authorization: str, token: str) -> bool:
    scheme, _, credentials = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode())
