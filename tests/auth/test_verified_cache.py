"""The per-process memory of verified tokens never outlives a token's `exp`."""

from __future__ import annotations

import asyncio
import time
import uuid

import jwt
import pytest

from crm.auth.tokens import TokenVerifier
from crm.config import Settings
from crm.errors import Unauthorized

SECRET = "cache-test-secret-" + "z" * 32


def _token(exp: float) -> str:
    claims = {"id": str(uuid.uuid4()), "role": "admin", "type": "access", "iat": int(time.time()), "exp": exp}
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def test_a_remembered_token_is_refused_once_it_expires() -> None:
    verifier = TokenVerifier(Settings(jwt_secret=SECRET))
    token = _token(int(time.time()) + 2)
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first  # answered from memory
    await asyncio.sleep(max(0.0, int(time.time()) + 2 - time.time()) + 1.1)
    with pytest.raises(Unauthorized, match="expired"):
        await verifier.verify(token)


async def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("crm.auth.tokens._VERIFIED_CACHE_SIZE", 3)
    verifier = TokenVerifier(Settings(jwt_secret=SECRET))
    tokens = [_token(int(time.time()) + 60 + i) for i in range(5)]
    for token in tokens:
        await verifier.verify(token)
    assert list(verifier._verified) == tokens[-3:]
