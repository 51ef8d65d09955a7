"""One attempt: POST the signed body to the checked address, and judge the answer.

Success is a 2xx answered within the timeout, which covers resolving, connecting, sending and
reading the answer (httpx's own timeouts are per phase, so a slow drip could last longer).
Redirects are not followed (a 3xx is a failure: following one would send the customers' data
to a URL nobody checked). At most 64 KiB of the answer are read, uncompressed (the request
asks for `identity`, and the bytes are counted as they come off the wire), then the stream is
closed: a receiver cannot hold the dispatcher with an endless body.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from crm.webhooks import addresses

MAX_RESPONSE_BYTES = 64 * 1024
KEPT_RESPONSE_CHARS = 1024
# A Retry-After beyond this is taken as this: a receiver cannot park a delivery for a year.
MAX_RETRY_AFTER_SECONDS = 86_400.0
USER_AGENT = "crm-service-webhooks/1.0"


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int
    response: str | None
    retry_after: float | None  # seconds, from a 429 or 503


async def attempt(
    http: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    within: float,
    allow_private: bool,
) -> Outcome:
    started = time.perf_counter()
    status_code: int | None = None
    error: str | None = None
    response_text: str | None = None
    retry_after: float | None = None
    try:
        async with asyncio.timeout(within):
            target = await addresses.check(url, allow_private=allow_private)
            request_headers = {
                **headers,
                "Host": target.host_header,
                "Content-Type": "application/cloudevents+json",
                "Accept-Encoding": "identity",
                "User-Agent": USER_AGENT,
            }
            extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
            request = http.build_request(
                "POST", target.url, content=body, headers=request_headers, extensions=extensions
            )
            response = await http.send(request, stream=True, follow_redirects=False)
            try:
                status_code = response.status_code
                read = bytearray()
                async for chunk in response.aiter_raw():
                    read += chunk
                    if len(read) >= MAX_RESPONSE_BYTES:
                        break
                response_text = bytes(read[:KEPT_RESPONSE_CHARS]).decode("utf-8", "replace") or None
                if status_code in {429, 503}:
                    retry_after = _retry_after(response.headers.get("retry-after"))
                if response.is_redirect:
                    error = f"redirect not followed (Location: {response.headers.get('location', '')[:200]})"
                elif not response.is_success:
                    error = f"answered {status_code}"
            finally:
                await response.aclose()
    except addresses.Refused as exc:
        error = f"refused: {exc}"
    except TimeoutError:
        error = f"no complete answer within {within:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    return Outcome(
        ok=error is None and status_code is not None and 200 <= status_code < 300,
        status_code=status_code,
        error=error,
        duration_ms=round((time.perf_counter() - started) * 1000),
        response=response_text,
        retry_after=retry_after,
    )


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds from now: delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(max((moment - datetime.now(UTC)).total_seconds(), 0.0), MAX_RETRY_AFTER_SECONDS)
