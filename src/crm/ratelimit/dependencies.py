"""The rate-limit check, attached to every `/api` router in main.py."""

from __future__ import annotations

from fastapi import Request
from starlette.types import Scope

from crm.auth.dependencies import CurrentUser
from crm.errors import DomainError
from crm.middleware import add_response_headers
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


# Where a request's decision is kept, so that it is counted once: crm.fastpath decides before
# it may leave the request to the application, whose dependency then reuses that decision.
_DECISION = "crm.rate_limit_decision"


async def decide(scope: Scope, limiter: RateLimiter, user_id: str) -> Decision:
    """This request's rate-limit decision, counted on the first call only."""
    state: dict[str, object] = scope.setdefault("state", {})
    decision = state.get(_DECISION)
    if not isinstance(decision, Decision):
        decision = await limiter.check(user_id)
        state[_DECISION] = decision
    return decision


def decided(scope: Scope) -> Decision | None:
    """The decision `decide` made for this request, if any."""
    decision = scope.get("state", {}).get(_DECISION)
    return decision if isinstance(decision, Decision) else None


async def rate_limit(request: Request, principal: CurrentUser) -> None:
    limiter: RateLimiter = request.app.state.rate_limiter
    if not limiter.enabled:
        return
    decision = await decide(request.scope, limiter, str(principal.user_id))
    headers = policy_headers(decision)
    if not decision.allowed:
        raise TooManyRequests(
            f"more than {decision.limit} requests in a minute; retry in {decision.reset_after} s",
            headers={**headers, "Retry-After": str(decision.reset_after)},
        )
    # Through the middleware: routes that return their own Response would drop them otherwise.
    add_response_headers(request.scope, headers)
