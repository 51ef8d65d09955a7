"""The request middleware: request id, size limits, access log, the last-resort 500.

It is written against raw ASGI (not BaseHTTPMiddleware) because it must see the
request body as it streams (to enforce the size limit without buffering) and must
cost little on the hot path.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Mapping

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm.db.transaction import interrupted
from crm.errors import PayloadTooLarge, problem_response, render
from crm.log import log_request, request_id_var, user_id_var

error_log = structlog.get_logger("crm.errors")

# A caller's X-Request-ID is echoed into logs and headers; accept only tame values
# (checked with fullmatch: `$` alone would also accept a trailing newline).
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

# All request header names and values together. uvicorn's default parser (httptools) sets no
# limit at all, so without this a 64 KiB cookie or an 8 MiB bearer token reaches the handlers.
# 16 KiB is what h11, Node and common proxies allow; real clients stay far below it.
MAX_HEADER_BYTES = 16 * 1024


# Headers that parts of the app want on the response whatever it turns out to be (rate-limit
# state, say). Kept in the request's state dict, which every layer shares by reference, so
# they reach the client whatever answers: the handler's Response or the error handler's.
_RESPONSE_HEADERS = "crm.response_headers"


def add_response_headers(scope: Scope, headers: Mapping[str, str]) -> None:
    """Have the request middleware add `headers` to this request's response."""
    extra: list[tuple[bytes, bytes]] = scope.setdefault("state", {}).setdefault(_RESPONSE_HEADERS, [])
    extra += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


class BodyTooLarge(PayloadTooLarge):
    """Raised from `receive` when a streamed body passes the limit: a chunked upload over the
    limit is a 413 like one that declared its Content-Length."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body exceeds {limit} bytes")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID_RE.fullmatch(incoming) else uuid.uuid4().hex
        rid_token = request_id_var.set(request_id)
        uid_token = user_id_var.set(None)
        started = time.perf_counter()
        status = 500
        response_started = False
        state: dict[str, object] = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                extra = [
                    (b"x-request-id", request_id.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    *state.get(_RESPONSE_HEADERS, ()),  # type: ignore[misc]
                ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            if sum(len(name) + len(value) for name, value in scope["headers"]) > self.max_header_bytes:
                await self._headers_too_large(scope, receive, send_with_headers)
                return
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                await self._too_large(scope, receive, send_with_headers)
                return
            await self.app(scope, self._limited(receive), send_with_headers)
        except asyncio.CancelledError:
            # The server cancels requests still running when the shutdown grace period ends,
            # and would answer its own plain-text 500. Say what happened instead: nothing was
            # changed (safe to retry), or, once a write had been sent, that its outcome is
            # unknown (its COMMIT may have reached the database).
            if not response_started:
                await render(interrupted(scope))(scope, receive, send_with_headers)
            raise
        except Exception:  # noqa: BLE001 - the last line of defence: log it, answer a clean 500
            error_log.exception("unhandled error", method=scope["method"], path=scope["path"])
            if not response_started:
                response = problem_response(500, f"unexpected error; quote request id {request_id} when reporting it")
                await response(scope, receive, send_with_headers)
        finally:
            log_request(
                # Explicit, so that anonymous requests carry `"user_id": null` rather than no key.
                user_id_var.get(),
                scope["method"],
                scope["path"],
                status,
                round((time.perf_counter() - started) * 1000, 2),
            )
            request_id_var.reset(rid_token)
            user_id_var.reset(uid_token)

    def _limited(self, receive: Receive) -> Receive:
        """Count body bytes as they arrive; chunked bodies have no Content-Length to check."""
        seen = 0
        limit = self.max_body_bytes

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return wrapped

    async def _headers_too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            431,
            f"request headers exceed {self.max_header_bytes} bytes",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            f"request body exceeds {self.max_body_bytes} bytes",
            slug=PayloadTooLarge.slug,
            title=PayloadTooLarge.title,
        )
        await response(scope, receive, send)
