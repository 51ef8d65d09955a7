"""Typed client for the Order Service, with its own errors, retries and circuit breaker.

Failure policy (what callers can rely on):
- every call finishes within `timeout` seconds, retries included;
- one retry, with jitter, for connection errors and 502/503/504 (GETs are idempotent);
- answers are size-capped (5 MiB) and shape-validated before anyone sees them;
- after 5 consecutive failures the breaker opens: calls fail at once for 30 s, then one
  trial call decides whether it closes again.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import httpx
import structlog
from pydantic import ValidationError

from crm.errors import DomainError
from crm.observability.metrics import BREAKER_OPENINGS, order_service_call
from crm.orders.schemas import OrdersPage

log = structlog.get_logger("crm.orders")

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
_RETRYABLE_STATUSES = frozenset({502, 503, 504})


# --- errors: each says what the client of the CRM sees --------------------------------


class OrderServiceError(DomainError):
    """The Order Service could not give a usable answer."""

    status, slug, title = 502, "order-service-error", "Bad Gateway"
    counts_as_failure = True  # for the circuit breaker


class OrderServiceNotConfigured(OrderServiceError):
    status, slug, title = 503, "order-service-not-configured", "Service Unavailable"
    counts_as_failure = False


class OrderServiceUnavailable(OrderServiceError):
    status, slug, title = 503, "order-service-unavailable", "Service Unavailable"


class OrderServiceTimeout(OrderServiceError):
    status, slug, title = 504, "order-service-timeout", "Gateway Timeout"


class OrderServiceBadResponse(OrderServiceError):
    status, slug, title = 502, "order-service-bad-response", "Bad Gateway"


class OrderServiceRejectedToken(OrderServiceError):
    status, slug, title = 502, "order-service-rejected-token", "Bad Gateway"
    # The neighbour is healthy; it just refused this caller.
    counts_as_failure = False


class CircuitOpen(OrderServiceUnavailable):
    slug = "order-service-circuit-open"


# --- circuit breaker ---------------------------------------------------------------------


@dataclass
class CircuitBreaker:
    failure_threshold: int = 5
    reset_after: float = 30.0
    failures: int = 0
    opened_at: float | None = None
    _trial_in_flight: bool = field(default=False, repr=False)

    def before_call(self) -> bool:
        """Raise CircuitOpen, or let the call go; True when it is the half-open trial call."""
        if self.opened_at is None:
            return False
        remaining = self.reset_after - (time.monotonic() - self.opened_at)
        if remaining > 0 or self._trial_in_flight:
            raise CircuitOpen(
                "the Order Service is failing; calls are paused",
                headers={"Retry-After": str(max(1, int(remaining + 0.999)))},
            )
        self._trial_in_flight = True  # half-open: exactly one caller gets to try
        return True

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self.failures += 1
        was_trial = self._trial_in_flight
        self._trial_in_flight = False
        if was_trial or self.failures >= self.failure_threshold:
            if self.opened_at is None or was_trial:
                log.warning("order service circuit opened", consecutive_failures=self.failures)
                BREAKER_OPENINGS.inc()
            self.opened_at = time.monotonic()

    def record_neutral(self) -> None:
        """A call that proved the service reachable but was not a success (e.g. a 401)."""
        self.failures = 0
        if self._trial_in_flight:
            self.record_success()

    def release_trial(self) -> None:
        """A call that ended without a verdict (its caller went away): it proves nothing.

        The failure count stays and an open circuit stays open; only the half-open slot
        is freed, so the next caller makes the trial call instead.
        """
        self._trial_in_flight = False


# --- the client ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderQuery:
    page: int = 1
    limit: int = 10
    status: str | None = None
    sort_by: str | None = None
    sort_order: str | None = None

    def params(self, customer_id: UUID | None) -> dict[str, str]:
        # Without customerId, the Order Service lists every customer's orders (the sync's view).
        params = {"customerId": str(customer_id)} if customer_id is not None else {}
        params |= {"page": str(self.page), "limit": str(self.limit)}
        if self.status:
            params["status"] = self.status
        if self.sort_by:
            params["sortBy"] = self.sort_by
        if self.sort_order:
            params["sortOrder"] = self.sort_order
        return params


class OrderServiceClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str | None,
        timeout: float,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/") if base_url else None
        self.timeout = timeout
        self.breaker = breaker or CircuitBreaker()

    @property
    def configured(self) -> bool:
        return self._base_url is not None

    async def list_orders(
        self, customer_id: UUID | None, query: OrderQuery, *, headers: Mapping[str, str], deadline: float | None = None
    ) -> OrdersPage:
        """One page of a customer's orders, validated; raises an OrderServiceError subclass.

        `deadline` (a `time.monotonic()` instant) lets a caller spread one time budget over
        several pages; by default each call gets the whole timeout.
        """
        if self._base_url is None:
            raise OrderServiceNotConfigured("the Order Service is not configured (ORDER_SERVICE_URL is unset)")
        started = time.perf_counter()
        try:
            trial = self.breaker.before_call()
        except CircuitOpen:
            order_service_call("breaker_open", time.perf_counter() - started)
            raise
        budget = (deadline - time.monotonic()) if deadline is not None else self.timeout
        try:
            if budget <= 0:
                raise OrderServiceTimeout(f"the Order Service did not answer within {self.timeout:g} s")
            try:
                async with asyncio.timeout(budget):
                    page = await self._get_with_retry(customer_id, query, headers)
            except TimeoutError:
                raise OrderServiceTimeout(f"the Order Service did not answer within {self.timeout:g} s") from None
        except OrderServiceError as exc:
            outcome = "timeout" if isinstance(exc, OrderServiceTimeout) else "error"
            order_service_call(outcome, time.perf_counter() - started)
            if exc.counts_as_failure:
                self.breaker.record_failure()
            else:
                self.breaker.record_neutral()
            raise
        except BaseException:
            # Cancelled by our caller: neither a success nor the neighbour's fault (nor counted).
            if trial:
                self.breaker.release_trial()
            raise
        order_service_call("ok", time.perf_counter() - started)
        self.breaker.record_success()
        return page

    async def _get_with_retry(
        self, customer_id: UUID | None, query: OrderQuery, headers: Mapping[str, str]
    ) -> OrdersPage:
        try:
            return await self._get(customer_id, query, headers)
        except _Retryable as first:
            log.info("order service call failed, retrying once", reason=str(first))
            await asyncio.sleep(random.uniform(0.05, 0.25))  # noqa: S311 - jitter, not crypto
            try:
                return await self._get(customer_id, query, headers)
            except _Retryable as second:
                raise second.final from None

    async def _get(self, customer_id: UUID | None, query: OrderQuery, headers: Mapping[str, str]) -> OrdersPage:
        url = f"{self._base_url}/api/orders"
        try:
            async with self._http.stream("GET", url, params=query.params(customer_id), headers=dict(headers)) as resp:
                if resp.status_code in (401, 403):
                    raise OrderServiceRejectedToken(
                        f"the Order Service rejected the forwarded token ({resp.status_code})"
                    )
                if resp.status_code in _RETRYABLE_STATUSES:
                    raise _Retryable(
                        OrderServiceBadResponse(f"the Order Service answered {resp.status_code}"),
                    )
                if resp.status_code != 200:
                    raise OrderServiceBadResponse(f"the Order Service answered {resp.status_code}")
                body = await _read_capped(resp)
        except httpx.TransportError as exc:
            raise _Retryable(
                OrderServiceUnavailable(f"the Order Service is unreachable ({type(exc).__name__})")
            ) from exc
        except httpx.RequestError as exc:
            # Not a transport problem: e.g. a body that fails its declared Content-Encoding.
            raise OrderServiceBadResponse(f"the Order Service's answer cannot be read ({type(exc).__name__})") from exc
        return _parse(body, customer_id)


class _Retryable(Exception):
    def __init__(self, final: OrderServiceError) -> None:
        super().__init__(final.detail)
        self.final = final


async def _read_capped(resp: httpx.Response) -> bytes:
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise OrderServiceBadResponse("the Order Service's answer is larger than 5 MiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise OrderServiceBadResponse("the Order Service's answer is larger than 5 MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes, customer_id: UUID | None) -> OrdersPage:
    try:
        data: Any = json.loads(body)
        page = OrdersPage.model_validate(data)
    except (ValueError, ValidationError, RecursionError) as exc:
        # ValidationError is a ValueError too; either way the shape is not the documented one.
        # RecursionError: JSON nested deeper than the parser's stack allows.
        raise OrderServiceBadResponse("the Order Service's answer is not in the documented format") from exc
    if customer_id is not None and any(order.customer_id != customer_id for order in page.orders):
        raise OrderServiceBadResponse("the Order Service returned orders of another customer")
    return page
