"""Prometheus metrics of the service, answered at GET /metrics (router.py; README, "Operating it").

Several worker processes, one answer: `crm serve` points PROMETHEUS_MULTIPROC_DIR at a fresh
directory before the workers start, and prometheus-client then keeps each worker's values in
files of its own there (its multiprocess mode); whichever worker answers a scrape adds up all
the files. A worker that dies leaves its files behind, so the instance's counters and histograms
never go backwards when the server restarts a worker; its live gauges (pool figures, breaker,
process figures) are dropped at the next scrape, once its pid is gone. Without the variable
(the tests' in-process apps, uvicorn started by hand) values live in process memory and the
default registry answers, with prometheus-client's own process metrics.

Per request the cost is one counter increment and one histogram observation on label children
bound once per (method, route, status); everything sampled (pools, breaker, process) is copied
into the metrics by `Publisher`, every second and at each scrape, never on a request's path.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from time import perf_counter
from typing import Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm.observability.pools import PoolFigures

# What generate_latest writes (and what Prometheus asks for first).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Read once, as prometheus-client itself does when it is first imported.
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")

# Seconds; the service answers most reads in a few milliseconds.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter("crm_http_requests", "HTTP requests answered, by route template", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "crm_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)

ORDER_SERVICE_CALLS = Counter(
    "crm_order_service_calls", "Calls to the Order Service (retries included), by outcome", ["outcome"]
)
ORDER_SERVICE_DURATION = Histogram(
    "crm_order_service_call_duration_seconds",
    "Time a call to the Order Service took (retries included), by outcome",
    ["outcome"],
    buckets=_LATENCY_BUCKETS,
)
BREAKER_OPEN = Gauge(
    "crm_order_service_breaker_open",
    "Worker processes whose Order Service circuit breaker is open or half-open",
    multiprocess_mode="livesum",
)
BREAKER_OPENINGS = Counter("crm_order_service_breaker_openings", "Times a worker's Order Service breaker opened")

RATE_LIMIT_REJECTIONS = Counter("crm_rate_limit_rejections", "Requests refused with 429 by the per-user rate limit")
IDEMPOTENT_REPLAYS = Counter(
    "crm_idempotent_replays", "Writes answered with the stored answer of an earlier one with the same Idempotency-Key"
)

POOL_MAX = Gauge("crm_db_pool_max_connections", "Connections the pool may open", ["pool"], multiprocess_mode="livesum")
POOL_OPEN = Gauge("crm_db_pool_connections", "Connections the pool holds open", ["pool"], multiprocess_mode="livesum")
POOL_IN_USE = Gauge(
    "crm_db_pool_connections_in_use", "Connections checked out of the pool", ["pool"], multiprocess_mode="livesum"
)
POOL_WAITERS = Gauge(
    "crm_db_pool_waiters", "Callers waiting for a connection of the pool", ["pool"], multiprocess_mode="livesum"
)
POOL_CHECKOUTS = Counter("crm_db_pool_checkouts", "Connection checkouts finished (or timed out)", ["pool"])
POOL_WAIT = Counter(
    "crm_db_pool_wait_seconds", "Time checkouts took: waiting for a free connection, or opening one", ["pool"]
)

# Set by the events relay that leads (crm.events.relay), from the database every few seconds;
# every other worker's stay 0, so the max over live workers is the database's figure. With
# several instances on one database, take the max over instances too.
EVENTS_BACKLOG = Gauge(
    "crm_events_backlog",
    "Events written but not yet published (the leading relay's count)",
    multiprocess_mode="livemax",
)
EVENTS_OLDEST_AGE = Gauge(
    "crm_events_oldest_unpublished_age_seconds",
    "Seconds the oldest unpublished event has waited (0: none waits)",
    multiprocess_mode="livemax",
)

WORKERS = Gauge("crm_worker_processes", "Worker processes serving", multiprocess_mode="livesum")

if MULTIPROCESS_DIR is not None:
    # The default registry's process collector describes only the process answering a scrape:
    # each worker publishes its own figures instead (registry=None: outside the default registry,
    # whose own process_* metrics these would collide with). Gauges per live pid; CPU summed over
    # every worker that ever ran, so it never goes backwards.
    _PROCESS_GAUGES = {
        name: Gauge(f"process_{name}", help_, multiprocess_mode="liveall", registry=None)
        for name, help_ in (
            ("resident_memory_bytes", "Resident memory size in bytes"),
            ("virtual_memory_bytes", "Virtual memory size in bytes"),
            ("open_fds", "Number of open file descriptors"),
            ("max_fds", "Maximum number of open file descriptors"),
            ("start_time_seconds", "Start time of the process since unix epoch in seconds"),
        )
    }
    _PROCESS_CPU = Counter("process_cpu_seconds", "Total user and system CPU time spent in seconds", registry=None)


# --- per request ---------------------------------------------------------------------------------

UNMATCHED = "unmatched"  # the route label of requests no route matched
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """Counts and times every HTTP request by method, route template and status.

    The route is the one Starlette's router matched (`scope["route"]`, set on the shared scope,
    also when only the path matched and the answer is a 405): its declared path, such as
    `/api/customers/{customer_id}`, never the requested one, so ids cannot grow the label set.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._bound: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope["method"]
            if method not in _METHODS:
                method = "other"  # any token is a valid method: keep them out of the label set
            key = (method, getattr(scope.get("route"), "path", UNMATCHED), status)
            bound = self._bound.get(key) or self._bind(key)
            bound[0].inc()
            bound[1].observe(perf_counter() - started)

    def _bind(self, key: tuple[str, str, int]) -> tuple[Any, Any]:
        method, route, status = key
        bound = (HTTP_REQUESTS.labels(method, route, str(status)), HTTP_DURATION.labels(method, route))
        self._bound[key] = bound
        return bound


_ORDER_OUTCOMES = {
    outcome: (ORDER_SERVICE_CALLS.labels(outcome), ORDER_SERVICE_DURATION.labels(outcome))
    for outcome in ("ok", "timeout", "error", "breaker_open")
}


def order_service_call(outcome: str, seconds: float) -> None:
    """Count one call to the Order Service: ok, timeout, error or breaker_open."""
    calls, duration = _ORDER_OUTCOMES[outcome]
    calls.inc()
    duration.observe(seconds)


# --- sampled figures -------------------------------------------------------------------------------


class ObservedPool(Protocol):
    name: str

    def figures(self) -> PoolFigures: ...


class Publisher:
    """Copies one worker's sampled figures into the metrics: its pools, its breaker, its process."""

    def __init__(self, pools: Sequence[ObservedPool], breaker_open: Any) -> None:
        self._pools = [(pool, _PoolChildren(pool.name)) for pool in pools]
        self._breaker_open = breaker_open  # () -> bool
        self._process = ProcessCollector(registry=None) if MULTIPROCESS_DIR is not None else None
        self._cpu_published = 0.0

    def publish(self) -> None:
        for pool, children in self._pools:
            children.publish(pool.figures())
        BREAKER_OPEN.set(1 if self._breaker_open() else 0)
        WORKERS.set(1)
        if self._process is not None:
            self._publish_process(self._process)

    async def run(self, interval: float = 1.0) -> None:
        while True:
            self.publish()
            await asyncio.sleep(interval)

    def _publish_process(self, collector: ProcessCollector) -> None:
        for family in collector.collect():
            name = family.name.removeprefix("process_")
            value = family.samples[0].value if family.samples else None
            if value is None:
                continue
            if name == "cpu_seconds":
                if value > self._cpu_published:
                    _PROCESS_CPU.inc(value - self._cpu_published)
                    self._cpu_published = value
            elif (gauge := _PROCESS_GAUGES.get(name)) is not None:
                gauge.set(value)


class _PoolChildren:
    def __init__(self, pool: str) -> None:
        self.max = POOL_MAX.labels(pool)
        self.open = POOL_OPEN.labels(pool)
        self.in_use = POOL_IN_USE.labels(pool)
        self.waiters = POOL_WAITERS.labels(pool)
        self.checkouts = POOL_CHECKOUTS.labels(pool)
        self.wait = POOL_WAIT.labels(pool)
        self._checkouts = 0
        self._seconds = 0.0

    def publish(self, figures: PoolFigures) -> None:
        self.max.set(figures.limit)
        self.open.set(figures.open)
        self.in_use.set(figures.in_use)
        self.waiters.set(figures.waiting)
        # Counters take what was added since the last publication.
        if figures.checkouts > self._checkouts:
            self.checkouts.inc(figures.checkouts - self._checkouts)
            self.wait.inc(max(0.0, figures.checkout_seconds - self._seconds))
            self._checkouts, self._seconds = figures.checkouts, figures.checkout_seconds


# --- GET /metrics ------------------------------------------------------------------------------------


def render() -> bytes:
    """The text exposition of the whole instance (every worker's files in multiprocess mode)."""
    if MULTIPROCESS_DIR is None:
        return generate_latest(REGISTRY)
    _forget_dead_workers(MULTIPROCESS_DIR)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def _forget_dead_workers(directory: str) -> None:
    """Drop the live gauges of worker processes that are gone (their counters stay)."""
    pids = {int(file.stem.rpartition("_")[2]) for file in Path(directory).glob("gauge_live*_*.db")}
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, another user's
