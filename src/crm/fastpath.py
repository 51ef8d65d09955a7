"""The hottest plain requests, answered below the framework.

Staff open customer cards, reload the customer list and dashboards poll segments and
statistics all day, and services create customers in bursts: these few requests are most
of the traffic. Through FastAPI each pays 0.5-1 ms of routing, dependency solving and
validation before our code runs (a create through the ORM about 1 ms more); here it is a
dictionary lookup for the token, the permission table, the rate limit, one statement on the
read pool and one serialisation, with the same request middleware around it (request id,
access log, CORS, rate-limit headers).

A create's one statement is its whole transaction (autocommit; the counters' triggers run
inside it). Its body is read here only when it declares a small Content-Length; whenever
the application must answer after all, it reads the same body from a replay.

Only the plain success is answered here. Each `PlainRead` parses its query strictly and
gives up (returns None) on anything it does not fully understand; so does this middleware
for a token not verified before by this process (the application verifies it and
remembers it), a role without the permission, a rate limit reached, or a failing
database. The application then answers exactly as it always does, through the one error
handler. So this path can only produce what the application would have produced for the
same request; tests compare the two byte for byte. One error is answered here: a pool with
no connection to give within the pool timeout, the 503 the application would send after
the same wait (rendered by the same function).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm.auth.permissions import Action, Resource, scope_for
from crm.auth.permissions import Scope as GrantScope
from crm.auth.tokens import Principal, TokenVerifier
from crm.config import Settings
from crm.db import ReadPoolExhausted, read_connection
from crm.errors import DomainError, render
from crm.log import user_id_var
from crm.middleware import add_response_headers
from crm.ratelimit.dependencies import decide, decided, policy_headers
from crm.ratelimit.service import RateLimiter


@dataclass(frozen=True, slots=True)
class Answer:
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    status: int = 200
    content_type: bytes = b"application/json"

    @classmethod
    def of_error(cls, error: DomainError) -> Answer:
        """What the application's error handler answers to `error`."""
        response = render(error)
        headers = tuple(response.raw_headers)
        content_type = next(v for k, v in headers if k == b"content-type")
        others = tuple((k, v) for k, v in headers if k not in {b"content-type", b"content-length"})
        return cls(bytes(response.body), others, response.status_code, content_type)


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


@dataclass(frozen=True, slots=True)
class PlainCreate:
    """One POST route creating a record from a small JSON body.

    `parse` validates the body as the application would (None: let the application say
    what is wrong); `write` stores it with one statement and returns the 201, or raises a
    DomainError (a duplicate, say) for the application to answer.
    """

    resource: Resource
    path: str
    parse: Callable[[bytes], object | None]
    write: Callable[[asyncpg.Connection, object, Principal], Awaitable[Answer]]


# A plain create's body is a few hundred bytes; larger ones (nested contacts...) go the long way.
_MAX_PLAIN_BODY = 16 * 1024


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value)
    return None


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token if scheme.lower() == "bearer" and token else None
    return None


class FastPath:
    """ASGI middleware answering the plain success of each PlainRead and PlainCreate directly
    (see the module doc)."""

    def __init__(self, app: ASGIApp, reads: Sequence[PlainRead], creates: Sequence[PlainCreate] = ()) -> None:
        self.app = app
        self.reads = tuple(reads)
        self.creates = {route.path: route for route in creates}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["method"] == "GET" and await self._answer(scope, send):
                return
            if scope["method"] == "POST" and scope["path"] in self.creates:
                replay = await self._create(scope, receive, send, self.creates[scope["path"]])
                if replay is None:
                    return
                receive = replay
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send) -> bool:
        """Answer the request if it is a plain success; False leaves it to the application."""
        found = self._match(scope)
        if found is None:
            return False
        route, parsed = found
        if await self._admitted(scope, route.resource, "read") is None:
            return False
        answer = await self._run(scope, route.read, parsed)
        if answer is None:
            return False
        await _send(scope, send, answer)
        return True

    async def _create(self, scope: Scope, receive: Receive, send: Send, route: PlainCreate) -> Receive | None:
        """Answer a plain create (None), or return what the application must read the body from."""
        length = _header(scope, b"content-length")
        if (
            length is None  # chunked: only the application's reader enforces the size limit on those
            or not length.isdigit()
            or int(length) > _MAX_PLAIN_BODY
            or _header(scope, b"content-type") != b"application/json"
            or _header(scope, b"idempotency-key") is not None  # the application keeps the replay record
        ):
            return receive
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        replay = _replaying(messages, receive)
        if message["type"] != "http.request":
            return replay
        parsed = route.parse(b"".join(m.get("body", b"") for m in messages))
        if parsed is None:
            return replay
        principal = await self._admitted(scope, route.resource, "create")
        if principal is None:
            return replay
        answer = await self._run(scope, lambda connection, value: route.write(connection, value, principal), parsed)
        if answer is None:
            return replay
        await _send(scope, send, answer)
        return None

    def _match(self, scope: Scope) -> tuple[PlainRead, object] | None:
        path: str = scope["path"]
        for route in self.reads:
            tail = route.tail(path)
            if tail is not None:
                parsed = route.parse(tail, scope.get("query_string", b""))
                return None if parsed is None else (route, parsed)
        return None

    @staticmethod
    async def _admitted(scope: Scope, resource: Resource, action: Action) -> Principal | None:
        """A token verified before, a role that may do `action` on all of `resource`, and rate-limit room."""
        state = scope["app"].state
        verifier: TokenVerifier = state.token_verifier
        token = _bearer(scope)
        principal = verifier.remembered(token) if token else None
        if principal is None or scope_for(principal.role, resource, action) is not GrantScope.all:
            return None
        user_id_var.set(str(principal.user_id))
        limiter: RateLimiter = state.rate_limiter
        if limiter.enabled and not (await decide(scope, limiter, str(principal.user_id))).allowed:
            return None
        return principal

    @staticmethod
    async def _run(
        scope: Scope, run: Callable[[asyncpg.Connection, object], Awaitable[Answer | None]], parsed: object
    ) -> Answer | None:
        """`run` on a pooled connection; None if the database could not answer it plainly."""
        state = scope["app"].state
        settings: Settings = state.settings
        try:
            async with read_connection(state.read_pool, settings.db_pool_timeout) as connection:
                return await run(connection, parsed)
        except ReadPoolExhausted as busy:
            # The application would wait as long for the same pool, then say this. Handing the
            # request over instead would make a busy process spend more on each request (the
            # framework's share) exactly when it has the least to spare.
            return Answer.of_error(busy)
        except (
            DomainError,  # 404, a duplicate, a cursor of another sort...: the application says it properly
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
        ):
            return None


async def _send(scope: Scope, send: Send, answer: Answer) -> None:
    decision = decided(scope)
    if decision is not None:  # counted for this answer: say so, as the application would
        add_response_headers(scope, policy_headers(decision))
    headers = [
        *answer.headers,
        (b"content-length", str(len(answer.body)).encode()),
        (b"content-type", answer.content_type),
    ]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives the application the messages this middleware already read, then the rest."""
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay
