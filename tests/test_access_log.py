"""The access line is rendered by crm.log.log_request, not by structlog's processor chain
(it runs on every request). It must be the line structlog would have written."""

from __future__ import annotations

import re

import pytest
import structlog

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
