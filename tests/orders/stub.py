"""A real HTTP server standing in for the Order Service, steered by each test.

It runs a small Starlette app under uvicorn in a background thread, on a socket bound to
a free port, so the CRM's client goes through real TCP, real HTTP parsing and real
timeouts. By default it serves the orders a test put in `stub.orders`, paged as the
Order Service does; `stub.script` (one-shot answers, consumed in order) and
`stub.behaviour` (every later answer) make it slow, failing or rude. Every request is
recorded (path, query parameters, headers) for the forwarding assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, overload

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

Behaviour = Callable[[Request, "StubOrderService"], Awaitable[Response]]
JSON = dict[str, Any]


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]  # lower-case names


def order(
    customer_id: str,
    n: int = 0,
    *,
    amount: str | float | int = "10.00",
    status: str = "delivered",
    created_at: str | None = None,
    **extra: Any,
) -> JSON:
    """One order in the documented wire format; `n` makes its id and number unique."""
    created = created_at or (datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=n)).isoformat().replace("+00:00", "Z")
    body: JSON = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{customer_id}/{n}")),
        "customer_id": customer_id,
        "order_number": f"ORD-{n:06d}",
        "status": status,
        "total_amount": amount,
        "shipping_address": "1 Main St",
        "shipping_city": "Kyiv",
        "shipping_postal_code": "01001",
        "shipping_country": "UA",
        "shipping_method": "courier",
        "payment_method": "card",
        "notes": None,
        "created_at": created,
        "updated_at": created,
        "items": [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{customer_id}/{n}/item")),
                "product_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "product")),
                "quantity": 1,
                "unit_price": amount,
                "total_price": amount,
            }
        ],
    }
    body.update(extra)
    return body


class LazyOrders(Sequence[JSON]):
    """`count` orders made on demand, so a 10,000+ order customer costs only the pages read."""

    def __init__(self, customer_id: str, count: int, amount: str = "1.00") -> None:
        self.customer_id = customer_id
        self.size = count
        self.amount = amount

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> JSON: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[JSON]: ...
    def __getitem__(self, index: int | slice) -> JSON | Sequence[JSON]:
        if isinstance(index, slice):
            return [self._make(i) for i in range(*index.indices(self.size))]
        if not 0 <= index < self.size:
            raise IndexError(index)
        return self._make(index)

    def _make(self, i: int) -> JSON:
        return {
            "id": str(uuid.UUID(int=i + 1)),
            "customer_id": self.customer_id,
            "order_number": f"ORD-{i:06d}",
            "status": "delivered" if i % 4 else "cancelled",
            "total_amount": self.amount,
            "created_at": (datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=i)).isoformat(),
            "items": [],
        }


def page_of(orders: Sequence[JSON], page: int, limit: int) -> JSON:
    total = len(orders)
    pages = (total + limit - 1) // limit
    return {
        "orders": list(orders[(page - 1) * limit : page * limit]),
        "pagination": {
            "total": total,
            "page": page,
            "limit": limit,
            "totalPages": pages,
            "hasNext": page < pages,
            "hasPrev": page > 1,
        },
    }


class StubOrderService:
    def __init__(self) -> None:
        self.orders: dict[str, Sequence[JSON]] = {}
        self.script: deque[Behaviour] = deque()
        self.behaviour: Behaviour | None = None
        self.requests: list[SeenRequest] = []
        self.stopping = threading.Event()
        self.url = ""
        self._lock = threading.Lock()
        self._seen = threading.Condition(self._lock)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until `count` requests have arrived (run it in a thread from async code)."""
        with self._seen:
            return self._seen.wait_for(lambda: len(self.requests) >= count, timeout)

    def app(self) -> ASGIApp:
        async def orders(request: Request) -> Response:
            with self._seen:
                self.requests.append(
                    SeenRequest(
                        method=request.method,
                        path=request.url.path,
                        params=dict(request.query_params),
                        headers={k.lower(): v for k, v in request.headers.items()},
                    )
                )
                behaviour = self.script.popleft() if self.script else self.behaviour
                self._seen.notify_all()
            return await (behaviour or serve_pages)(request, self)

        return Starlette(routes=[Route("/api/orders", orders)])

    async def pause(self, seconds: float) -> None:
        """Sleep, but stop early when the server is being shut down (so teardown never waits)."""
        if self._wake is None:  # made in the server's own loop, on first use
            self._wake = asyncio.Event()
            self._loop = asyncio.get_running_loop()
        if self.stopping.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def stop(self) -> None:
        """Called from the test's thread before the server shuts down: end every pause."""
        self.stopping.set()
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)


# --- behaviours ----------------------------------------------------------------------------


async def serve_pages(request: Request, stub: StubOrderService) -> Response:
    """What the Order Service does: the customer's orders, filtered by status, one page."""
    q = request.query_params
    orders = stub.orders.get(q.get("customerId", ""), [])
    if status := q.get("status"):
        orders = [o for o in orders if o["status"] == status]
    return JSONResponse(page_of(orders, int(q.get("page", "1")), int(q.get("limit", "10"))))


def answer(status: int, body: bytes | str = b"", content_type: str = "application/json", **headers: str) -> Behaviour:
    async def behaviour(_: Request, __: StubOrderService) -> Response:
        return Response(body, status_code=status, media_type=content_type, headers=headers)

    return behaviour


def json_answer(document: Any, status: int = 200) -> Behaviour:
    async def behaviour(_: Request, __: StubOrderService) -> Response:
        return JSONResponse(document, status_code=status)

    return behaviour


def slow(seconds: float, then: Behaviour = serve_pages) -> Behaviour:
    async def behaviour(request: Request, stub: StubOrderService) -> Response:
        await stub.pause(seconds)
        return await then(request, stub)

    return behaviour


def streamed(total_bytes: int, chunk: int = 256 * 1024) -> Behaviour:
    """A chunked body (no Content-Length) of `total_bytes`: only reading it reveals its size."""

    async def behaviour(_: Request, __: StubOrderService) -> Response:
        async def body() -> AsyncIterator[bytes]:
            sent = 0
            while sent < total_bytes:
                n = min(chunk, total_bytes - sent)
                sent += n
                yield b" " * n

        return StreamingResponse(body(), media_type="application/json")

    return behaviour


def per_page(failing: dict[int, Behaviour]) -> Behaviour:
    """Serve pages normally, except the page numbers in `failing`."""

    async def behaviour(request: Request, stub: StubOrderService) -> Response:
        special = failing.get(int(request.query_params.get("page", "1")))
        return await (special or serve_pages)(request, stub)

    return behaviour


def page_answer(spoil: Callable[[JSON], object]) -> Behaviour:
    """A valid one-order page for the requested customer, then spoiled by `spoil` (in place)."""

    async def behaviour(request: Request, _: StubOrderService) -> Response:
        document = page_of([order(request.query_params.get("customerId", ""))], 1, 10)
        spoil(document)
        return JSONResponse(document)

    return behaviour


# --- running it ----------------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on (bound, then closed): connections to it are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def start_server(app: ASGIApp, on_stop: Callable[[], None] = lambda: None) -> Iterator[str]:
    """Serve `app` on a free port in a thread for the `with` block; gives the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="off", log_config=None, access_log=False, log_level="warning", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"stub-order-service-{port}")
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the stub Order Service did not start")
            time.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        on_stop()
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        assert not thread.is_alive(), "the stub Order Service thread did not stop"


@contextmanager
def start_raw_server(replies: list[bytes | None]) -> Iterator[tuple[str, list[bytes]]]:
    """A bare TCP server: the n-th connection gets `replies[n]` verbatim, or is closed unanswered
    when it is None (a dropped connection, which no HTTP framework would let us fake).

    Yields the base URL and the list of request heads received so far.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.02)
    port = listener.getsockname()[1]
    heads: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                head = b""
                try:
                    while b"\r\n\r\n" not in head:
                        data = conn.recv(65536)
                        if not data:
                            break
                        head += data
                    heads.append(head)
                    reply = replies[len(heads) - 1] if len(heads) <= len(replies) else None
                    if reply is not None:
                        conn.sendall(reply)
                except OSError:
                    continue  # the client gave up first; nothing to answer

    thread = threading.Thread(target=serve, name=f"raw-order-service-{port}")
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", heads
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()
        assert not thread.is_alive(), "the raw server thread did not stop"


def http_reply(document: Any) -> bytes:
    body = json.dumps(document).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body
