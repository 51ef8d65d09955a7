"""Structured logging: one JSON object per line, with the request id in every line.

The request id and user id live in context variables set by the request middleware
and the auth dependency, so any `log.info(...)` anywhere in a request carries them
without being passed around; while tracing is on, so do the current span's trace_id and span_id.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Any

import structlog
from structlog.typing import EventDict

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)

# Never let credentials reach a log line, whatever a caller passes as a field.
_SECRET_KEYS = frozenset({"authorization", "token", "access_token", "password", "jwt", "secret"})


# Set while traces are on (crm.observability.tracing): the current span's (trace_id, span_id),
# or None outside any span. None when tracing is off, so that lines cost nothing more then.
_trace_ids: Callable[[], tuple[str, str] | None] | None = None


def set_trace_ids(reader: Callable[[], tuple[str, str] | None] | None) -> None:
    """Have every log line carry the ids `reader` gives (None: stop)."""
    global _trace_ids  # noqa: PLW0603 - one tracing setup per process
    _trace_ids = reader


def _add_context(_: Any, __: str, event: EventDict) -> EventDict:
    request_id = request_id_var.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    user_id = user_id_var.get()
    if user_id is not None:
        event.setdefault("user_id", user_id)
    if _trace_ids is not None and (ids := _trace_ids()) is not None:
        event.setdefault("trace_id", ids[0])
        event.setdefault("span_id", ids[1])
    return event


# Credentials that end up inside a message (an exception echoing a header or a body, say):
# a bearer credential, or anything shaped like a JWT (three base64url parts, `eyJ` = '{"').
_CREDENTIAL_RE = re.compile(
    r"(?i:\bbearer\s+[A-Za-z0-9._~+/=-]+)|\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
)


# What every credential _CREDENTIAL_RE finds contains; searched first, because the full
# pattern costs a few microseconds per string and the access line scrubs three per request.
_CREDENTIAL_HINT = re.compile(r"(?i:bearer)|eyJ")


def _scrubbed(value: str) -> str:
    return _CREDENTIAL_RE.sub("[redacted]", value) if _CREDENTIAL_HINT.search(value) else value


def _redact(_: Any, __: str, event: EventDict) -> EventDict:
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "[redacted]"
    return event


def _redact_credentials(_: Any, __: str, event: EventDict) -> EventDict:
    # Runs last, after tracebacks are rendered into `exception`, so those are scrubbed too.
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = _scrubbed(value)
    return event


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter, except that lines `log_request` rendered itself pass through as they are."""

    def format(self, record: logging.LogRecord) -> str:
        rendered: str | None = getattr(record, "crm_rendered", None)
        return rendered if rendered is not None else super().format(record)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The service's one log handler: a stream handler that also takes ready-made access lines
    (`access`) and writes those in batches, one write() per `interval` (or per `max_bytes`)
    instead of one per request. Any other line first writes the access lines before it, so
    the stream keeps the order in which lines were logged; logging's shutdown at exit writes
    what is left. A process killed outright loses at most `interval` of access lines.
    """

    def __init__(self, stream: Any, interval: float = 0.2, max_bytes: int = 64 * 1024) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._max_bytes = max_bytes
        self._stopped = threading.Event()
        threading.Thread(target=self._flush_every, args=(interval,), name="crm-log-flush", daemon=True).start()

    def access(self, line: str) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(line + self.terminator)
            self._pending_bytes += len(line)
            if self._pending_bytes >= self._max_bytes:
                self._write_pending()

    def emit(self, record: logging.LogRecord) -> None:
        self._write_pending()  # Handler.handle holds the lock
        super().emit(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()
            super().flush()

    def close(self) -> None:
        self._stopped.set()
        self.flush()
        super().close()

    def _write_pending(self) -> None:
        if self._pending:
            text, self._pending, self._pending_bytes = "".join(self._pending), [], 0
            self.stream.write(text)

    def _flush_every(self, interval: float) -> None:
        while not self._stopped.wait(interval):
            if self._pending:
                self.flush()


_access_logger = logging.getLogger("crm.access")
# The handler configure_logging installed for JSON lines (None: console lines, which go through
# structlog). While it is the only one, access lines go to it directly (`_Handler.access`): a
# LogRecord, the handler chain and a write() per line were most of a line's cost.
_handler: _Handler | None = None


def _json_string(value: str | None) -> str:
    return "null" if value is None else encode_basestring_ascii(_scrubbed(value))


def log_request(user_id: str | None, method: str, path: str, status: int, duration_ms: float) -> None:
    """The access line of one request: the same JSON object structlog would render (as
    json.dumps writes it), at a tenth of the cost: it runs on every request, and through the
    processor chain and the handler it was the largest single cost of a fast read (~30 of
    ~155 us of a worker's CPU per GET by id under load). Tests compare it with structlog's."""
    if not _access_logger.isEnabledFor(logging.INFO):
        return
    if _handler is None:
        structlog.get_logger("crm.access").info(
            "request", user_id=user_id, method=method, path=path, status=status, duration_ms=duration_ms
        )
        return
    request_id = request_id_var.get()
    timestamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    line = (
        f'{{"user_id": {_json_string(user_id)}, "method": {_json_string(method)}, "path": {_json_string(path)}, '
        f'"status": {int(status)}, "duration_ms": {float(duration_ms)!r}, "event": "request", "level": "info", '
        f'"logger": "crm.access", "timestamp": "{timestamp}"'
        + ("" if request_id is None else f', "request_id": {_json_string(request_id)}')
    )
    if _trace_ids is not None and (ids := _trace_ids()) is not None:
        line += f', "trace_id": "{ids[0]}", "span_id": "{ids[1]}"'
    line += "}"
    root = logging.getLogger()
    if len(root.handlers) == 1 and root.handlers[0] is _handler:
        _handler.access(line)
        return
    record = logging.LogRecord("crm.access", logging.INFO, __file__, 0, line, None, None)
    record.crm_rendered = line
    _access_logger.handle(record)


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    global _handler  # noqa: PLW0603 - one logging setup per process
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
    formatter = _Formatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_credentials,
            renderer,
        ],
    )
    handler = _Handler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for replaced in root.handlers:
        if isinstance(replaced, _Handler):
            replaced.close()  # writes what it holds; its flushing thread ends
    root.handlers[:] = [handler]
    _handler = handler if fmt == "json" else None
    root.setLevel(level.upper())
    # uvicorn's own access log would be a second, unstructured line per request.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
