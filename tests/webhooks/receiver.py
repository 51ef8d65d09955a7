"""A real HTTP server standing in for a webhook receiver, steered by each test.

A Starlette app under uvicorn in a thread (tests.orders.stub.start_server), so deliveries go
through real TCP and HTTP. Every request is recorded; `behaviour` decides each answer and can
look at what came (a per-customer failure, a slow answer, an endless body).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()

    @property
    def event(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document


Behaviour = Callable[[Seen], Awaitable[Response]]


async def ok(_: Seen) -> Response:
    return Response("thanks", status_code=200)


def status(code: int, **headers: str) -> Behaviour:
    async def behaviour(_: Seen) -> Response:
        return Response("no", status_code=code, headers=headers)

    return behaviour


class Receiver:
    def __init__(self) -> None:
        self.url = ""
        self.requests: list[Seen] = []
        self.behaviour: Behaviour = ok
        # When each request's answer was ready, by webhook-id (the last, if sent more than once).
        self.answered: dict[str, float] = {}
        self._lock = threading.Lock()

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            seen = Seen(request.url.path, dict(request.headers), await request.body(), time.monotonic())
            with self._lock:
                self.requests.append(seen)
            response = await self.behaviour(seen)
            with self._lock:
                self.answered[seen.headers.get("webhook-id", "")] = time.monotonic()
            return response

        return Starlette(routes=[Route("/{path:path}", receive, methods=["POST", "GET"])])

    def seen(self, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.requests if path is None or s.path == path]

    async def wait_for(
        self, count: int, *, path: str | None = None, within: float = 10.0, where: Callable[[Seen], bool] | None = None
    ) -> list[Seen]:
        """At least `count` requests (to `path`, matching `where`), or the test fails after `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            found = [s for s in self.seen(path) if where is None or where(s)]
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"{len(found)} of {count} requests arrived: {found}"
            await asyncio.sleep(0.02)


def endless(chunk: bytes = b"x" * 16384) -> Behaviour:
    async def behaviour(_: Seen) -> Response:
        async def body() -> AsyncIterator[bytes]:
            while True:
                yield chunk
                await asyncio.sleep(0)

        return StreamingResponse(body(), status_code=200)

    return behaviour


def slow(seconds: float, then: Behaviour = ok) -> Behaviour:
    async def behaviour(seen: Seen) -> Response:
        await asyncio.sleep(seconds)
        return await then(seen)

    return behaviour
