"""Typo suggestions have a time budget: past it the search answers without them, never a 5xx."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from crm.common import tiers
from tests.helpers import create_customer
from tests.interactions.support import create_interaction


async def test_suggestions_past_their_budget_are_left_out(
    client: httpx.AsyncClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = await create_customer(client, admin)
    await create_interaction(client, admin, customer["id"], subject="Quarterly review")
    # Within the budget the typo finds its word.
    found = await client.get("/api/interactions/search", params={"query": "Quartrely"}, headers=admin)
    assert [i["subject"] for i in found.json()] == ["Quarterly review"]

    # A suggestion pass that outlasts the budget (a sleep stands in for a huge trigram bitmap).
    async def slow(s: Any, limit: int, bounds: tiers.Bounds) -> list[Any]:
        await s.connection.execute("SELECT pg_sleep(5)")
        raise AssertionError("the budget should have cancelled the sleep")

    monkeypatch.setattr(tiers, "_similar", slow)
    started = time.perf_counter()
    response = await client.get("/api/interactions/search", params={"query": "Quartrely"}, headers=admin)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    assert response.json() == []
    assert elapsed < 2.0, elapsed  # the budget (0.15 s), not the sleep
    # The request's transaction went on: the same search with a literal word still answers.
    literal = await client.get("/api/interactions/search", params={"query": "quarterly"}, headers=admin)
    assert [i["subject"] for i in literal.json()] == ["Quarterly review"]
