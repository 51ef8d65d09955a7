"""Helpers shared by the tests: tokens and small request builders."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt

from crm.config import Settings


class TokenFactory:
    """Mints tokens as the Auth Service would, plus deliberately broken ones for the auth tests."""

    def __init__(self, settings: Settings) -> None:
        assert settings.jwt_secret
        self.secret = settings.jwt_secret
        self.users: dict[str, uuid.UUID] = {}

    def claims(self, role: str, user_id: uuid.UUID | None = None, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "id": str(user_id or self.users.setdefault(role, uuid.uuid4())),
            "email": f"{role}@example.com",
            "role": role,
            "type": "access",
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 900,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, role: str, user_id: uuid.UUID | None = None, **overrides: Any) -> str:
        return jwt.encode(self.claims(role, user_id, **overrides), self.secret, algorithm="HS256")

    def headers(self, role: str, user_id: uuid.UUID | None = None, **overrides: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, user_id, **overrides)}"}


def customer_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "first_name": "Ivan",
        "last_name": "Petrenko",
        "email": f"ivan.{uuid.uuid4().hex[:8]}@example.com",
        "phone": "+380 67 123 4567",
        "status": "active",
    }
    body.update(overrides)
    return body


async def create_customer(client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/customers", json=customer_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status (and names `field`, if given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"]
    assert isinstance(body["detail"], str)
    if field is not None:
        fields = [e["field"] for e in body.get("errors", [])]
        assert field in fields, f"{field!r} not in {fields}: {body}"
    return body
