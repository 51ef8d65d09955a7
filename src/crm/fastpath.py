"""The hottest plain reads, answered below the framework.

Staff open customer cards, reload the customer list and dashboards poll segments and
statistics all day: these few requests are most of the traffic. Through FastAPI each pays
0.5-1 ms of routing, dependency solving and validation before our code runs; here it is a
dictionary lookup for the token, the permission table, the rate limit, one statement on the
read pool and one serialisation, with the same request middleware around it (request id,
access log, CORS, rate-limit headers).

Only the plain success is answered here. Each `PlainRead` parses its query strictly and
gives up (returns None) on anything it does not fully understand; so does this middleware
for a token not verified before by this process (the application verifies it and
remembers it), a role without the permission, a rate limit reached, a busy pool or a
failing database. The application then answers exactly as it always does, through the one
error handler. So this path can only produce what the application would have produced for
the same request; tests compare the two byte for byte.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
from starlette.types import ASGIApp, Receive, Scope, Send

from crm.auth.permissions import Resource, scope_for
from crm.auth.permissions import Scope as GrantScope
from crm.auth.tokens import TokenVerifier
from crm.db import ReadPoolExhausted, read_connection
from crm.errors import DomainError
from crm.log import user_id_var
from crm.middleware import add_response_headers
from crm.ratelimit.dependencies import policy_headers
from crm.ratelimit.service import RateLimiter

# Waiting longer than this for a pooled connection means the pool is busy: the application's
# path then waits its full pool timeout and answers 503 if it must.
_ACQUIRE_TIMEOUT = 0.05


@dataclass(frozen=True, slots=True)
class Answer:
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


# Checks that need no database, from the path's tail after its prefix and the raw query
# string: what `read` needs, or None to leave the request to the application.
Parsed = Callable[[str, bytes], object | None]


def no_query(tail: str, query: bytes) -> object | None:
    """For reads that take no parameters: any query string is for the application to judge."""
    del tail
    return True if not query else None


@dataclass(frozen=True, slots=True)
class PlainRead:
    """One GET route: `path` exactly, or any path with `prefix` and a tail of `tail_length`."""

    resource: Resource
    parse: Parsed
    read: Callable[[asyncpg.Connection, object], Awaitable[Answer | None]]
    path: str | None = None
    prefix: str | None = None
    tail_length: int = 0

    def tail(self, path: str) -> str | None:
        if self.path is not None:
            return "" if path == self.path else None
        assert self.prefix is not None
        if len(path) == len(self.prefix) + self.tail_length and path.startswith(self.prefix):
            return path[len(self.prefix) :]
        return None


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token if scheme.lower() == "bearer" and token else None
    return None


class FastPath:
    """ASGI middleware answering the plain success of each PlainRead directly (see module doc)."""

    def __init__(self, app: ASGIApp, reads: Sequence[PlainRead]) -> None:
        self.app = app
        self.reads = tuple(reads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and await self._answer(scope, send):
            return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send) -> bool:
        """Answer the request if it is a plain success; False leaves it to the application."""
        found = self._match(scope)
        if found is None:
            return False
        route, parsed = found
        if not await self._admitted(scope, route.resource):
            return False
        answer = await self._read(scope, route, parsed)
        if answer is None:
            return False
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(answer.body)).encode()),
            *answer.headers,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})
        return True

    def _match(self, scope: Scope) -> tuple[PlainRead, object] | None:
        path: str = scope["path"]
        for route in self.reads:
            tail = route.tail(path)
            if tail is not None:
                parsed = route.parse(tail, scope.get("query_string", b""))
                return None if parsed is None else (route, parsed)
        return None

    @staticmethod
    async def _admitted(scope: Scope, resource: Resource) -> bool:
        """A token verified before, a role that may read all of `resource`, and rate-limit room."""
        state = scope["app"].state
        verifier: TokenVerifier = state.token_verifier
        token = _bearer(scope)
        principal = verifier.remembered(token) if token else None
        if principal is None or scope_for(principal.role, resource, "read") is not GrantScope.all:
            return False
        user_id_var.set(str(principal.user_id))
        limiter: RateLimiter = state.rate_limiter
        if limiter.enabled:
            decision = await limiter.check(str(principal.user_id))
            if not decision.allowed:
                return False
            add_response_headers(scope, policy_headers(decision))
        return True

    @staticmethod
    async def _read(scope: Scope, route: PlainRead, parsed: object) -> Answer | None:
        try:
            async with read_connection(scope["app"].state.read_pool, _ACQUIRE_TIMEOUT) as connection:
                return await route.read(connection, parsed)
        except (
            DomainError,  # 404, a cursor of another sort...: the application says it properly
            ReadPoolExhausted,
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
        ):
            return None
