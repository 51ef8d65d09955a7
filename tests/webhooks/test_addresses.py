"""SSRF: addresses are checked again at every attempt (DNS can change), and the checked one is used."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from crm.webhooks import addresses
from tests.helpers import create_customer
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_subscriptions import subscribe


@pytest.mark.parametrize(
    ("host", "said"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("10.0.0.7", "10.0.0.7 is a private address"),
        ("169.254.169.254", "169.254.169.254 is a link-local address"),
        ("[::1]", "::1 is a loopback address"),
        ("localhost", "localhost resolves to 127.0.0.1, a loopback address"),
    ],
)
async def test_an_address_that_became_private_is_refused_at_delivery(
    strict_client: httpx.AsyncClient,
    admin: dict[str, str],
    receiver: Receiver,
    db: asyncpg.Connection[Any],
    host: str,
    said: str,
) -> None:
    hook = await subscribe(strict_client, admin, "https://93.184.216.34/hook", "crm.customer.*")
    # What a DNS change would do to the name: now it leads inside (the receiver's port, listening).
    port = urlsplit(receiver.url).port
    await db.execute(
        "UPDATE webhook_subscriptions SET url = $1 WHERE id = $2", f"http://{host}:{port}/hook", hook["id"]
    )
    await create_customer(strict_client, admin)
    deadline = time.monotonic() + 10
    while not (attempts := await db.fetch("SELECT * FROM webhook_attempts ORDER BY number")):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert attempts[0]["error"] == f"refused: {said}"
    assert attempts[0]["status_code"] is None
    assert attempts[0]["next_attempt_at"] is not None  # an error like any other: retried, on the schedule
    assert receiver.seen() == []


async def test_the_checked_address_is_connected_to_with_the_names_host_header(
    client: httpx.AsyncClient, admin: dict[str, str], receiver: Receiver
) -> None:
    port = urlsplit(receiver.url).port
    await subscribe(client, admin, f"http://localhost:{port}/named", "crm.customer.*")
    await create_customer(client, admin)
    (seen,) = await receiver.wait_for(1)
    assert seen.path == "/named"
    assert seen.headers["host"] == f"localhost:{port}"


async def test_a_target_is_pinned_to_the_address_that_passed() -> None:
    target = await addresses.check("https://localhost:8443/a?b=1", allow_private=True)
    assert target.url.host in {"127.0.0.1", "::1"}
    assert target.url.port == 8443
    assert target.url.path == "/a"
    assert target.host_header == "localhost:8443"
    assert target.sni_hostname == "localhost"
    with pytest.raises(addresses.Refused, match="loopback"):
        await addresses.check("https://localhost:8443/", allow_private=False)
    with pytest.raises(addresses.Refused, match="does not resolve"):
        await addresses.check("http://no-such-host.invalid/", allow_private=False)
