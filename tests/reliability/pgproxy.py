"""A TCP proxy between the service and PostgreSQL that fails on command, the way networks do.

- `freeze()`: nothing is forwarded in either direction, and every socket stays open (a paused
  VM, a black-holed network); new connections are accepted and held the same way. `thaw()`
  forwards again.
- `arm("INSERT")`: the next time the server answers an INSERT (its CommandComplete, 'C'), the
  proxy forwards that answer and closes both sockets at once. `arm("COMMIT")`: the same, for
  the answer to a COMMIT of a transaction that ran an INSERT. The write has then reached the
  database (for COMMIT: is stored), and the client has lost the connection before it could
  learn what happened.
- `arm("HOLD_COMMIT")`: the server's answer to that COMMIT is not forwarded, and nothing after
  it on that connection: the row is stored, the client waits (the sockets stay open).

It reads enough of the protocol for that: the server's messages after the optional one-byte
answer to an SSLRequest are a type byte and a length. An encrypted session is forwarded as
is and cannot be cut (the test servers do not use TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.engine import make_url

Cut = Literal["INSERT", "COMMIT", "HOLD_COMMIT"]

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    ssl_answer_pending: bool = False
    opaque: bool = False  # TLS: bytes we cannot read
    in_insert_transaction: bool = False
    held: bool = False
    buffer: bytearray = field(default_factory=bytearray)

    def close(self, *, abort_server: bool = True) -> None:
        self.client.close()
        if abort_server:
            self.server.transport.abort()
        else:
            self.server.close()


class PgProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        # A host that is a directory is PostgreSQL's Unix socket directory (the embedded server's).
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.cuts = 0  # connections cut (or held) as armed
        self.held = asyncio.Event()  # set when an armed HOLD_COMMIT withheld an answer
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._armed: Cut | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @classmethod
    @asynccontextmanager
    async def to(cls, database_url: str) -> AsyncIterator[PgProxy]:
        """A running proxy in front of the server of `database_url`."""
        url = make_url(database_url)
        socket_dir = url.query.get("host")
        host = socket_dir if isinstance(socket_dir, str) else url.host
        proxy = cls(host or "127.0.0.1", url.port or 5432)
        await proxy.start()
        try:
            yield proxy
        finally:
            await proxy.close()

    def url(self, database_url: str) -> str:
        """`database_url`, reaching its server through this proxy."""
        url = make_url(database_url).difference_update_query(["host"]).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.thaw()
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2)

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def arm(self, cut: Cut) -> None:
        self._armed = cut

    def disarm(self) -> None:
        self._armed = None

    def _spawn(self, coroutine: Coroutine[None, None, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            host, port = self.upstream
            if host.startswith("/"):
                server_reader, server_writer = await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
            else:
                server_reader, server_writer = await asyncio.open_connection(host, port)
        except OSError:
            client_writer.close()
            return
        link = _Link(client_writer, server_writer)
        self._links.add(link)
        self._spawn(self._pump_to_server(link, client_reader))
        self._spawn(self._pump_to_client(link, server_reader))

    async def _pump_to_server(self, link: _Link, reader: asyncio.StreamReader) -> None:
        first = True
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                if first and len(data) >= 8 and int.from_bytes(data[0:4], "big") == 8:
                    # SSLRequest / GSSENCRequest: the server answers with a single unframed byte.
                    link.ssl_answer_pending = int.from_bytes(data[4:8], "big") in {_SSL_REQUEST, _GSSENC_REQUEST}
                first = False
                await self._flowing.wait()
                link.server.write(data)
                await link.server.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._end(link)

    async def _pump_to_client(self, link: _Link, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await self._flowing.wait()
                if link.held:
                    continue  # the client never hears from this connection again
                forward, cut = self._parse(link, data)
                if forward:
                    link.client.write(forward)
                    await link.client.drain()
                if cut:
                    # Both sockets at once: the client keeps the answer it just got, and the
                    # server sees its client gone (and rolls back whatever is uncommitted).
                    link.close()
                    break
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if not link.held:
                self._end(link)

    def _end(self, link: _Link) -> None:
        if link in self._links and not link.held:
            self._links.discard(link)
            link.close(abort_server=False)

    def _parse(self, link: _Link, data: bytes) -> tuple[bytes, bool]:
        """The bytes to forward now, and whether to cut the connection after them."""
        buffer = link.buffer
        buffer += data
        out = bytearray()
        while buffer:
            if link.ssl_answer_pending:
                answer = bytes(buffer[:1])
                del buffer[:1]
                out += answer
                link.ssl_answer_pending = False
                link.opaque = answer == b"S"
                continue
            if link.opaque:
                out += buffer
                buffer.clear()
                break
            if len(buffer) < 5:
                break
            end = 1 + int.from_bytes(buffer[1:5], "big")
            if len(buffer) < end:
                break
            message = bytes(buffer[:end])
            del buffer[:end]
            if message[:1] == b"C":
                action = self._on_command_complete(link, message[5:-1].decode("ascii", "replace"))
                if action == "hold":
                    link.held = True
                    buffer.clear()
                    return bytes(out), False
                out += message
                if action == "cut":
                    buffer.clear()
                    return bytes(out), True
                continue
            out += message
        return bytes(out), False

    def _on_command_complete(self, link: _Link, tag: str) -> Literal["cut", "hold"] | None:
        if tag.startswith("INSERT"):
            link.in_insert_transaction = True
            if self._armed == "INSERT":
                return self._fire("cut")
        elif tag in {"COMMIT", "ROLLBACK"}:
            wrote, link.in_insert_transaction = link.in_insert_transaction, False
            if tag == "COMMIT" and wrote and self._armed == "COMMIT":
                return self._fire("cut")
            if tag == "COMMIT" and wrote and self._armed == "HOLD_COMMIT":
                self.held.set()
                return self._fire("hold")
        return None

    def _fire(self, action: Literal["cut", "hold"]) -> Literal["cut", "hold"]:
        self._armed = None
        self.cuts += 1
        return action
