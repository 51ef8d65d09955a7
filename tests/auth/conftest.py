from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.auth.support import app_client, free_port, make_settings
from tests.conftest import TEST_JWT_SECRET


@pytest.fixture(scope="module")
async def offline(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The default configuration (HS256, TEST_JWT_SECRET) with an unreachable database.

    For requests that must be refused before any query runs: they need no database of
    their own, and one that slipped through authentication would get a 503, not a 2xx.
    """
    settings = make_settings(tmp_path_factory.mktemp("offline"), jwt_secret=TEST_JWT_SECRET)
    async with app_client(settings, f"postgresql://crm@127.0.0.1:{free_port()}/nowhere") as client:
        yield client
