"""The access line is rendered by crm.log.log_request, not by structlog's processor chain
(it runs on every request). It must be the line structlog would have written."""

from __future__ import annotations

import io
import json
import logging
import re
import time

import pytest
import structlog

from crm import log as crm_log
from crm.log import configure_logging, log_request, request_id_var
from tests.auth.support import capture_logs

TIMESTAMP = re.compile(r'"timestamp": "[^"]+"')


@pytest.fixture(autouse=True)
def json_logging() -> None:
    configure_logging("info", "json")


@pytest.mark.parametrize(
    ("user_id", "method", "path", "request_id"),
    [
        ("7d1c4c2e-6a35-4f0e-9c5e-2f3f3a1c9b11", "GET", "/api/customers/7d1c4c2e", "r-1"),
        (None, "POST", "/api/customers", None),
        (None, "GET", '/api/клієнти/"quoted"\\slash\u2028', "r:2.x_y-z"),
        # Credentials in any of the caller's strings are redacted, as in every other line.
        (None, "GET", "/api/eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl", "eyJhbGciOi.eyJzdWIiOi.c2ln"),
    ],
)
def test_the_line_is_what_structlog_would_write(
    user_id: str | None, method: str, path: str, request_id: str | None
) -> None:
    token = request_id_var.set(request_id)
    try:
        with capture_logs() as logs:
            log_request(user_id, method, path, 201, 12.34)
            structlog.get_logger("crm.access").info(
                "request", user_id=user_id, method=method, path=path, status=201, duration_ms=12.34
            )
    finally:
        request_id_var.reset(token)
    ours, structlogs = logs.text.splitlines()
    assert TIMESTAMP.sub("T", ours) == TIMESTAMP.sub("T", structlogs)
    assert ours.count('"timestamp"') == 1
    assert logs.records()[0]["timestamp"].endswith("Z")
    assert "eyJ" not in logs.text


@pytest.mark.parametrize("duration_ms", [12.34, 0.1, 1e-05, 1500.0, 3.0])
def test_the_line_written_straight_to_the_only_handler_is_the_same(duration_ms: float) -> None:
    # With the configured handler alone on the root logger, log_request writes to its stream
    # itself (no LogRecord); with another handler present (as in capture_logs) it does not.
    root = logging.getLogger()
    handler = crm_log._handler  # the one configure_logging installed
    assert handler is not None
    others = root.handlers[:]
    root.handlers[:] = [handler]  # without pytest's capturing handlers, as in production
    stream = io.StringIO()
    previous = handler.setStream(stream)
    token = request_id_var.set('r"1')
    try:
        log_request(None, "GET", "/api/клієнти", 200, duration_ms)
        structlog.get_logger("crm.access").info(
            "request", user_id=None, method="GET", path="/api/клієнти", status=200, duration_ms=duration_ms
        )
    finally:
        request_id_var.reset(token)
        handler.setStream(previous)
        root.handlers[:] = others
    ours, structlogs = stream.getvalue().splitlines()
    assert TIMESTAMP.sub("T", ours) == TIMESTAMP.sub("T", structlogs)
    assert json.loads(ours)["duration_ms"] == duration_ms


def test_nothing_is_written_below_the_configured_level() -> None:
    configure_logging("warning", "json")
    with capture_logs() as logs:
        log_request(None, "GET", "/health", 200, 0.5)
    assert logs.text == ""


def test_console_format_keeps_structlogs_console_rendering() -> None:
    configure_logging("info", "console")
    with capture_logs() as logs:
        log_request(None, "GET", "/health", 200, 0.5)
    assert "request" in logs.text
    assert not logs.text.lstrip().startswith("{")


def test_batched_access_lines_keep_their_place_and_are_written_soon() -> None:
    stream = io.StringIO()
    handler = crm_log._Handler(stream, interval=0.05)
    handler.setFormatter(logging.Formatter("%(message)s"))
    other = logging.getLogger("crm.test.batching")
    other.propagate = False
    other.addHandler(handler)
    try:
        handler.access("first")
        handler.access("second")
        assert stream.getvalue() == ""  # waiting for the batch
        other.warning("third")  # any other line writes the access lines logged before it
        assert stream.getvalue().splitlines() == ["first", "second", "third"]
        handler.access("fourth")
        deadline = time.monotonic() + 5
        while "fourth" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stream.getvalue().splitlines()[-1] == "fourth"  # by the flushing thread
        handler.access("fifth")
    finally:
        other.removeHandler(handler)
        handler.close()
    assert stream.getvalue().splitlines()[-1] == "fifth"  # closing writes what is left
