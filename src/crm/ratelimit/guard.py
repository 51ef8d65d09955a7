"""The rate-limit check every authenticated endpoint passes (see crm.api.endpoint)."""

from __future__ import annotations

from starlette.types import Scope

from crm.auth.tokens import Principal
from crm.errors import DomainError
from crm.middleware import add_response_headers
from crm.observability.metrics import RATE_LIMIT_REJECTIONS
from crm.ratelimit.service import WINDOW_SECONDS, Decision, RateLimiter

_POLICY = "per-user"


class TooManyRequests(DomainError):
    status, slug, title = 429, "rate-limited", "Too Many Requests"


def policy_headers(decision: Decision) -> dict[str, str]:
    # draft-ietf-httpapi-ratelimit-headers: the policy, and what is left of it.
    headers = {"RateLimit-Policy": f'"{_POLICY}";q={decision.limit};w={WINDOW_SECONDS}'}
    if decision.counted:  # failing open, nothing was counted: claim no remaining quota
        headers["RateLimit"] = f'"{_POLICY}";r={decision.remaining};t={decision.reset_after}'
    return headers


async def enforce_rate_limit(scope: Scope, limiter: RateLimiter, principal: Principal) -> None:
    """Count the request against its user's minute; 429 once the minute's allowance is spent."""
    if not limiter.enabled:
        return
    decision = await limiter.check(str(principal.user_id))
    headers = policy_headers(decision)
    if not decision.allowed:
        RATE_LIMIT_REJECTIONS.inc()
        raise TooManyRequests(
            f"more than {decision.limit} requests in a minute; retry in {decision.reset_after} s",
            headers={**headers, "Retry-After": str(decision.reset_after)},
        )
    # Through the request middleware, so that every answer carries them, errors included.
    add_response_headers(scope, headers)
