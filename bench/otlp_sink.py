"""A stand-in OTLP/HTTP collector for `make bench`: accepts exported spans and drops them, so the
tracing cases measure what the service spends on tracing, not what a collector does."""

from __future__ import annotations

from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": f"{message['type']}.complete"})
            if message["type"] == "lifespan.shutdown":
                return
    more = True
    while more:  # read the export request through
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/x-protobuf")]}
    )
    await send({"type": "http.response.body", "body": b""})
