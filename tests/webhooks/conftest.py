"""Webhook tests: the app sends to receivers on 127.0.0.1, with the retry schedule and timeout shortened."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from crm.config import Settings
from crm.main import create_app
from tests.conftest import TEST_JWT_SECRET
from tests.orders.stub import start_server
from tests.webhooks.receiver import Receiver


def webhook_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "jwt_secret": TEST_JWT_SECRET,
        "CRM_DATA_DIR": tmp_path,
        "log_format": "json",
        "rate_limit_per_minute": 0,
        "webhook_allow_private_networks": True,
        "webhook_retry_schedule": [1, 1, 1],
        "webhook_timeout": 2.0,
        "webhook_poll_interval": 0.05,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return webhook_settings(tmp_path)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    stub = Receiver()
    with start_server(stub.app()) as url:
        stub.url = url
        yield stub


@pytest.fixture
def second_receiver() -> Iterator[Receiver]:
    stub = Receiver()
    with start_server(stub.app()) as url:
        stub.url = url
        yield stub


@pytest.fixture
async def strict_client(tmp_path: Path, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that refuses private networks, as production does."""
    app = create_app(webhook_settings(tmp_path, webhook_allow_private_networks=False), database_url=database_url)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as http:
            yield http
