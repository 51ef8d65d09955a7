"""Driving crm.fastpath alone: one request through the middleware, with a downstream app that
records whether it was called (and the body it could still read), so a test shows which of
the two answered."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from crm.customers import fast_create
from crm.customers import fast_read as customer_reads
from crm.customers import fast_search as customer_search
from crm.fastpath import FastPath, PlainCreate, PlainRead
from crm.interactions import fast_read as interaction_reads

# Every plain read and create, as crm.main installs them.
ALL_READS = (*customer_reads.READS, *customer_search.READS, *interaction_reads.READS)
ALL_CREATES = fast_create.CREATES


class Downstream:
    """The application behind the middleware: answers 299 and keeps the bodies it received."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    @property
    def calls(self) -> int:
        return len(self.bodies)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        self.bodies.append(b"".join(chunks))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def drive(
    app: FastAPI,
    path: str,
    headers: dict[str, str],
    reads: tuple[PlainRead, ...] = ALL_READS,
    *,
    method: str = "GET",
    body: bytes = b"",
    chunks: int = 1,
    content_length: bool = True,
    creates: tuple[PlainCreate, ...] = ALL_CREATES,
) -> tuple[Downstream, dict[str, Any]]:
    """One request for `path` (with its query) through FastPath alone, with `app` as the
    application state; a body arrives in `chunks` pieces, with a Content-Length unless told not."""
    downstream = Downstream()
    middleware = FastPath(downstream, reads, creates)
    path, _, query = path.partition("?")
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if method != "GET" and content_length:
        raw_headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode("latin-1"),
        "headers": raw_headers,
        "app": app,
    }
    size = max(1, -(-len(body) // chunks))
    pieces = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    messages = [
        {"type": "http.request", "body": piece, "more_body": n < len(pieces) - 1} for n, piece in enumerate(pieces)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return downstream, {"status": start["status"], "headers": dict(start["headers"]), "body": answer}
