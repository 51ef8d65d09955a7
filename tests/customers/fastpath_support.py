"""Driving crm.fastpath alone: one GET through the middleware, with a downstream app that
records whether it was called, so a test shows which of the two answered."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from crm.customers import fast_read as customer_reads
from crm.customers import fast_search as customer_search
from crm.fastpath import FastPath, PlainRead
from crm.interactions import fast_read as interaction_reads

# Every plain read, as crm.main installs them.
ALL_READS = (*customer_reads.READS, *customer_search.READS, *interaction_reads.READS)


class Downstream:
    """The application behind the middleware: answers 299 and remembers that it was asked."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.calls += 1
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def drive(
    app: FastAPI, path: str, headers: dict[str, str], reads: tuple[PlainRead, ...] = ALL_READS
) -> tuple[Downstream, dict[str, Any]]:
    """One GET of `path` (with its query) through FastPath alone, with `app` as the application state."""
    downstream = Downstream()
    middleware = FastPath(downstream, reads)
    sent: list[dict[str, Any]] = []
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query.encode("latin-1"),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "app": app,
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return downstream, {"status": start["status"], "headers": dict(start["headers"]), "body": body}
