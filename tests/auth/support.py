"""Helpers for tests that need their own app (other key configurations), keys, or the log output."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette

from crm.config import Settings
from crm.main import create_app

BASE_URL = "http://crm.test"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test-built app: nothing read from `.env`, no JWT setting unless given."""
    values: dict[str, Any] = {
        "jwt_secret": None,
        "jwt_public_key": None,
        "jwt_jwks_url": None,
        "jwt_issuer": None,
        "jwt_audience": None,
        "log_format": "json",
        "CRM_DATA_DIR": data_dir,
        # As in tests/conftest.py: tests that send many requests must not trip the limiter.
        "rate_limit_per_minute": 0,
        "redis_url": None,
        "cors_origins": "",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client over `app`, with the app's lifespan running."""
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client,
    ):
        yield client


@asynccontextmanager
async def app_client(settings: Settings, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client over an app freshly built from `settings`."""
    async with serving(create_app(settings, database_url=database_url)) as client:
        yield client


# --- keys ------------------------------------------------------------------------------


def rsa_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


# --- tokens ----------------------------------------------------------------------------


def access_claims(role: str = "admin", user_id: uuid.UUID | None = None, **overrides: Any) -> dict[str, Any]:
    """The Auth Service's access-token claims; an override of None drops the claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "id": str(user_id or uuid.uuid4()),
        "email": f"{role}@example.com",
        "role": role,
        "type": "access",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 900,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def unsigned_token(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """`alg: none` by hand (PyJWT refuses to help): header.payload. with an empty signature."""
    return f"{b64url_json(header or {'alg': 'none', 'typ': 'JWT'})}.{b64url_json(claims)}."


def hs256_by_hand(claims: dict[str, Any], secret: bytes, header: dict[str, Any] | None = None) -> str:
    """HS256 with any bytes as the secret (PyJWT refuses PEM-looking secrets, an attacker does not)."""
    signing_input = f"{b64url_json(header or {'alg': 'HS256', 'typ': 'JWT'})}.{b64url_json(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(response: httpx.Response, detail_contains: str | None = None) -> dict[str, Any]:
    """A 401 as the spec wants it: problem+json, `WWW-Authenticate: Bearer`, a request id."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].split()[0] == "Bearer"
    assert response.headers["x-request-id"]
    body: dict[str, Any] = response.json()
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"
    assert body["type"] == "urn:crm:problem:unauthorized"
    if detail_contains is not None:
        assert detail_contains in body["detail"], body
    return body


# --- logs ------------------------------------------------------------------------------


class CapturedLogs:
    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    @property
    def text(self) -> str:
        return self._stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        """Every captured line, each of which must be one JSON object."""
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def events(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("event") == event]


@contextmanager
def capture_logs() -> Iterator[CapturedLogs]:
    """Capture what the app logs, rendered exactly as its own handler renders it.

    `create_app` installs one handler on the root logger (JSON to stderr); a second
    handler with the same formatter sees the same lines, whatever pytest does to stderr.
    Use it after the app is built: building an app replaces the root handlers.
    """
    root = logging.getLogger()
    formatter = next((h.formatter for h in root.handlers if h.formatter is not None), None)
    assert formatter is not None, "configure_logging has not run: build the app first"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    try:
        yield CapturedLogs(stream)
    finally:
        root.removeHandler(handler)


def app_routes(app: Starlette) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves."""
    from starlette.routing import Route

    found = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or ())
        if method != "HEAD"
    }
    return sorted(found, key=lambda mp: (mp[1], mp[0]))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
