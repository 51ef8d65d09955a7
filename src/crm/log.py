"""Structured logging: one JSON object per line, with the request id in every line.

The request id and user id live in context variables set by the request middleware
and the auth dependency, so any `log.info(...)` anywhere in a request carries them
without being passed around.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import Any

import structlog
from structlog.typing import EventDict

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)

# Never let credentials reach a log line, whatever a caller passes as a field.
_SECRET_KEYS = frozenset({"authorization", "token", "access_token", "password", "jwt", "secret"})


def _add_context(_: Any, __: str, event: EventDict) -> EventDict:
    request_id = request_id_var.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    user_id = user_id_var.get()
    if user_id is not None:
        event.setdefault("user_id", user_id)
    return event


# Credentials that end up inside a message (an exception echoing a header or a body, say):
# a bearer credential, or anything shaped like a JWT (three base64url parts, `eyJ` = '{"').
_CREDENTIAL_RE = re.compile(
    r"(?i:\bbearer\s+[A-Za-z0-9._~+/=-]+)|\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
)


def _redact(_: Any, __: str, event: EventDict) -> EventDict:
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "[redacted]"
    return event


def _redact_credentials(_: Any, __: str, event: EventDict) -> EventDict:
    # Runs last, after tracebacks are rendered into `exception`, so those are scrubbed too.
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = _CREDENTIAL_RE.sub("[redacted]", value)
    return event


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.types.Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_context,
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_credentials,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log would be a second, unstructured line per request.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
