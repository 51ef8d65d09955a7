"""Helpers of the hostile-input tests: a real uvicorn server, raw HTTP, and the leak scan."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import uvicorn
from starlette.applications import Starlette

# What an error body must never contain: traces and driver or ORM names (in any case), and SQL
# (in capitals: "you may only update interactions you recorded" is prose).
NAMES = ("traceback", 'file "', "sqlalchemy", "asyncpg", "psycopg", "sqlstate")
SQL = ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", " WHERE ", "RETURNING ")


def assert_no_leak(body: str | bytes, context: object = "") -> None:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    for name in NAMES:
        assert name not in text.lower(), (name, context, text[:500])
    for keyword in SQL:
        assert keyword not in text, (keyword, context, text[:500])


def assert_clean(response: httpx.Response) -> None:
    """Never a 5xx, and an error is a problem document that leaks nothing."""
    assert response.status_code < 500, (response.request.method, response.request.url, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), response.headers
        assert_no_leak(response.text, response.request.url)


async def snapshot(db: asyncpg.Connection[Any]) -> dict[str, list[dict[str, Any]]]:
    """Every row of the three tables, for "nothing changed" assertions."""
    return {
        table: [dict(r) for r in await db.fetch(f"SELECT * FROM {table} ORDER BY id")]  # noqa: S608 - fixed names
        for table in ("customers", "contacts", "interactions")
    }


# --- a real server ----------------------------------------------------------------------------


@contextmanager
def live_server(app: Starlette, *, http: str = "auto") -> Iterator[int]:
    """Serve `app` with uvicorn, as `crm serve` does (`http="auto"` picks httptools), on a free
    port in a thread, lifespan included. Yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        http=http,
        lifespan="on",
        log_config=None,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"crm-hostile-{port}")
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the CRM server did not start")
            time.sleep(0.005)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "the CRM server thread did not stop"


@dataclass(frozen=True)
class RawResponse:
    """An answer read off the socket; `status` is None when the server closed without one."""

    status: int | None
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def from_app(self) -> bool:
        # The middleware stamps every response of the app; the server's own refusals lack it.
        return "x-request-id" in self.headers


async def raw_request(
    port: int,
    method: str,
    target: bytes | str,
    headers: Mapping[str, str | bytes] | None = None,
    body: bytes = b"",
) -> RawResponse:
    """Send exactly these bytes: no client normalises `..` away or refuses odd headers."""
    target_bytes = target.encode() if isinstance(target, str) else target
    head = [method.encode() + b" " + target_bytes + b" HTTP/1.1", b"Connection: close"]
    if not any(name.lower() == "host" for name in headers or {}):
        head.append(b"Host: crm.test")
    for name, value in (headers or {}).items():
        head.append(name.encode() + b": " + (value.encode() if isinstance(value, str) else value))
    if body or method in {"POST", "PUT"}:
        head.append(b"Content-Length: " + str(len(body)).encode())
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    try:
        try:
            writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
            await writer.drain()
        except ConnectionError:
            pass  # the server may refuse (and close) before it has read everything
        try:
            data = await asyncio.wait_for(reader.read(), timeout=20)
        except ConnectionError:
            data = b""
    finally:
        writer.close()
        with suppress(ConnectionError):
            await writer.wait_closed()
    return parse_response(data)


def parse_response(data: bytes) -> RawResponse:
    if not data:
        return RawResponse(None, {}, b"")
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    return RawResponse(int(status_line.split()[1]), headers, body)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out
