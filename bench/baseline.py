"""The bare baseline for `make bench`: one asyncpg fetch of a customer by id, returned as JSON.

Served exactly like the service (same ASGI server, same worker count), so the ratio of
the two GET-by-id throughputs shows what the service's own layers cost.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import asyncpg

_pool: asyncpg.Pool | None = None
_QUERY = "SELECT * FROM customers WHERE id = $1"


def _default(value: Any) -> str:
    return str(value) if isinstance(value, uuid.UUID) else value.isoformat()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _pool  # noqa: PLW0603 - one pool per worker process, made at startup
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=5, max_size=10)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _pool is not None:
                    await _pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert _pool is not None
    row = await _pool.fetchrow(_QUERY, uuid.UUID(scope["path"].rsplit("/", 1)[-1]))
    status, body = (200, json.dumps(dict(row), default=_default).encode()) if row else (404, b"{}")
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
