"""`GET /api/customers/{id}` without the framework, for the hottest request of the service.

Staff open customer cards all day and other services look customers up by id, so this
one request is most of the traffic. Through FastAPI it costs about a millisecond of
Python (routing, dependency solving, response validation) on top of the one statement
it needs; here it is a dictionary lookup for the token, one statement and one
serialisation, with the same middleware around it (request id, access log, CORS).

Only the plain success is answered here. Everything else goes on to the application,
which answers exactly as it always does, through the one error handler: a token not
verified before by this process (the application verifies it and remembers it), a role
without the permission, a customer that does not exist, a rate limit reached, a busy
pool or a failing database, an id that is not in canonical form. So this path can only
produce what the application would have produced for the same request.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from starlette.types import ASGIApp, Receive, Scope, Send

from crm.auth.permissions import Scope as GrantScope
from crm.auth.permissions import scope_for
from crm.auth.tokens import TokenVerifier
from crm.common.concurrency import etag
from crm.customers.schemas import CustomerDetail
from crm.customers.service import read_customer
from crm.db import ReadPoolExhausted, read_connection
from crm.errors import NotFound
from crm.log import user_id_var
from crm.middleware import add_response_headers
from crm.ratelimit.dependencies import policy_headers
from crm.ratelimit.service import RateLimiter

_PREFIX = "/api/customers/"
_ID_LENGTH = 36  # canonical 8-4-4-4-12 form; other spellings FastAPI accepts take the long way
# Waiting longer than this for a pooled connection means the pool is busy: the application's
# path then waits its full pool timeout and answers 503 if it must.
_ACQUIRE_TIMEOUT = 0.05


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token if scheme.lower() == "bearer" and token else None
    return None


class FastCustomerRead:
    """ASGI middleware answering successful `GET /api/customers/{id}` directly (see module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and len(path) == len(_PREFIX) + _ID_LENGTH
            and path.startswith(_PREFIX)
            and await self._answer(scope, send, path[len(_PREFIX) :])
        ):
            return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send, raw_id: str) -> bool:
        """Answer the request if it is the plain success case; False leaves it to the application."""
        state = scope["app"].state
        verifier: TokenVerifier = state.token_verifier
        token = _bearer(scope)
        principal = verifier.remembered(token) if token else None
        if principal is None or scope_for(principal.role, "customers", "read") is not GrantScope.all:
            return False
        try:
            customer_id = uuid.UUID(raw_id)
        except ValueError:
            return False
        user_id_var.set(str(principal.user_id))
        headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
        limiter: RateLimiter = state.rate_limiter
        if limiter.enabled:
            decision = await limiter.check(str(principal.user_id))
            if not decision.allowed:
                return False
            add_response_headers(scope, policy_headers(decision))
        data = await self._read(state.read_pool, customer_id)
        if data is None:
            return False
        body = CustomerDetail.model_validate(data).model_dump_json(by_alias=True).encode()
        headers += [(b"content-length", str(len(body)).encode()), (b"etag", etag(data["version"]).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True

    @staticmethod
    async def _read(pool: asyncpg.Pool, customer_id: uuid.UUID) -> dict[str, Any] | None:
        try:
            async with read_connection(pool, _ACQUIRE_TIMEOUT) as connection:
                return await read_customer(connection, customer_id)
        except (
            NotFound,
            ReadPoolExhausted,
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
        ):
            return None
