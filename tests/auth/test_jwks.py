"""JWT_JWKS_URL: keys fetched from a real local HTTP server, cached, refetched on an unknown `kid`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.auth.support import (
    access_claims,
    app_client,
    assert_unauthorized,
    b64url_json,
    bearer,
    ec_private_key,
    free_port,
    hs256_by_hand,
    make_settings,
    rsa_private_key,
    unsigned_token,
)

LIST = "/api/customers"
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def jwk(kid: str, key: PrivateKey) -> dict[str, Any]:
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        data: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
        data["alg"] = "RS256"
    else:
        data = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public))
        data["alg"] = "ES256"
    data.update(kid=kid, use="sig")
    return data


def sign(key: PrivateKey, kid: str | None, **overrides: Any) -> str:
    alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(access_claims(**overrides), key, algorithm=alg, headers=headers)


class JwksServer:
    """A real HTTP server publishing a key set that a test can rotate; it counts the fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.body: bytes | None = None  # overrides the key set with raw bytes (broken documents)
        self.fetches = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._lock:
                    owner.fetches += 1
                    body = owner.body if owner.body is not None else json.dumps({"keys": owner.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def publish(self, *keys: dict[str, Any]) -> None:
        with self._lock:
            self.keys = list(keys)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def key_a() -> rsa.RSAPrivateKey:
    return rsa_private_key()


@pytest.fixture(scope="module")
def key_b() -> rsa.RSAPrivateKey:
    return rsa_private_key()


@pytest.fixture(scope="module")
def key_ec() -> ec.EllipticCurvePrivateKey:
    return ec_private_key()


@pytest.fixture
async def client(tmp_path: Path, database_url: str, jwks: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    """JWKS-configured; no refetch cooldown, so rotation is visible at once."""
    settings = make_settings(tmp_path, jwt_jwks_url=jwks.url, jwt_jwks_refetch_cooldown=0)
    async with app_client(settings, database_url) as http:
        yield http


@pytest.fixture
async def offline(tmp_path: Path, jwks: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    """JWKS-configured, unreachable database: for tokens that must be refused before any query."""
    settings = make_settings(tmp_path, jwt_jwks_url=jwks.url, jwt_jwks_refetch_cooldown=0)
    async with app_client(settings, f"postgresql://crm@127.0.0.1:{free_port()}/nowhere") as http:
        yield http


async def test_rs256_and_es256_keys_from_the_set(
    client: httpx.AsyncClient, jwks: JwksServer, key_a: rsa.RSAPrivateKey, key_ec: ec.EllipticCurvePrivateKey
) -> None:
    jwks.publish(jwk("rsa-1", key_a), jwk("ec-1", key_ec))
    assert (await client.get(LIST, headers=bearer(sign(key_a, "rsa-1")))).status_code == 200
    assert (await client.get(LIST, headers=bearer(sign(key_ec, "ec-1")))).status_code == 200
    # Known kids are served from the cached set: one fetch for both requests.
    assert jwks.fetches == 1


async def test_key_rotation_refetches_the_set(
    client: httpx.AsyncClient, jwks: JwksServer, key_a: rsa.RSAPrivateKey, key_b: rsa.RSAPrivateKey
) -> None:
    jwks.publish(jwk("2024-a", key_a))
    assert (await client.get(LIST, headers=bearer(sign(key_a, "2024-a")))).status_code == 200
    assert jwks.fetches == 1

    # The Auth Service rotates: the new key replaces the old one in the published set.
    jwks.publish(jwk("2025-b", key_b))
    response = await client.get(LIST, headers=bearer(sign(key_b, "2025-b")))
    assert response.status_code == 200, response.text
    assert jwks.fetches == 2

    # The withdrawn key is no longer accepted (no stale per-kid cache).
    assert_unauthorized(await client.get(LIST, headers=bearer(sign(key_a, "2024-a"))), "signing key not found")
    assert jwks.fetches == 3


async def test_unknown_kid(offline: httpx.AsyncClient, jwks: JwksServer, key_a: rsa.RSAPrivateKey) -> None:
    jwks.publish(jwk("known", key_a))
    assert_unauthorized(await offline.get(LIST, headers=bearer(sign(key_a, "unknown"))), "signing key not found")


async def test_token_without_kid(offline: httpx.AsyncClient, jwks: JwksServer, key_a: rsa.RSAPrivateKey) -> None:
    jwks.publish(jwk("known", key_a))
    assert_unauthorized(await offline.get(LIST, headers=bearer(sign(key_a, None))))


async def test_right_kid_wrong_key(
    offline: httpx.AsyncClient, jwks: JwksServer, key_a: rsa.RSAPrivateKey, key_b: rsa.RSAPrivateKey
) -> None:
    jwks.publish(jwk("a", key_a))
    assert_unauthorized(await offline.get(LIST, headers=bearer(sign(key_b, "a"))), "signature")


async def test_algorithm_that_does_not_match_the_keys_type(
    offline: httpx.AsyncClient, jwks: JwksServer, key_a: rsa.RSAPrivateKey, key_ec: ec.EllipticCurvePrivateKey
) -> None:
    # An ES256 token naming the kid of an RSA key: refused, not a crash in the verifier.
    jwks.publish(jwk("rsa", key_a), jwk("ec", key_ec))
    token = jwt.encode(access_claims(), key_ec, algorithm="ES256", headers={"kid": "rsa"})
    assert_unauthorized(await offline.get(LIST, headers=bearer(token)))


async def test_hs256_and_none_are_refused(
    offline: httpx.AsyncClient, jwks: JwksServer, key_a: rsa.RSAPrivateKey
) -> None:
    jwks.publish(jwk("a", key_a))
    hs = hs256_by_hand(access_claims(), b"whatever", header={"alg": "HS256", "kid": "a"})
    assert_unauthorized(await offline.get(LIST, headers=bearer(hs)), "'HS256' is not accepted")
    none = unsigned_token(access_claims(), {"alg": "none", "kid": "a"})
    assert_unauthorized(await offline.get(LIST, headers=bearer(none)), "'none' is not accepted")
    # Refused on the header alone: the key set was never needed.
    assert jwks.fetches == 0


async def test_good_header_garbage_payload(
    offline: httpx.AsyncClient, jwks: JwksServer, key_a: rsa.RSAPrivateKey
) -> None:
    jwks.publish(jwk("a", key_a))
    token = b64url_json({"alg": "RS256", "kid": "a"}) + ".!!!not-base64!!!.c2ln"
    assert_unauthorized(await offline.get(LIST, headers=bearer(token)), "malformed token")


async def test_expired_and_refresh_tokens(
    offline: httpx.AsyncClient, jwks: JwksServer, key_a: rsa.RSAPrivateKey
) -> None:
    jwks.publish(jwk("a", key_a))
    expired = sign(key_a, "a", exp=int(time.time()) - 1)
    assert_unauthorized(await offline.get(LIST, headers=bearer(expired)), "expired")
    assert_unauthorized(await offline.get(LIST, headers=bearer(sign(key_a, "a", type="refresh"))), "access token")


async def test_made_up_kids_do_not_flood_the_auth_service(
    tmp_path: Path, jwks: JwksServer, key_a: rsa.RSAPrivateKey
) -> None:
    # The default configuration: refetches on unknown kids are rate-limited by a cooldown.
    jwks.publish(jwk("a", key_a))
    settings = make_settings(tmp_path, jwt_jwks_url=jwks.url)
    assert settings.jwt_jwks_refetch_cooldown > 0
    async with app_client(settings, f"postgresql://crm@127.0.0.1:{free_port()}/nowhere") as client:
        for n in range(20):
            assert_unauthorized(await client.get(LIST, headers=bearer(sign(key_a, f"made-up-{n}"))))
    assert jwks.fetches == 1


async def test_key_set_unreachable_is_503_not_401(tmp_path: Path, key_a: rsa.RSAPrivateKey) -> None:
    url = f"http://127.0.0.1:{free_port()}/jwks.json"
    settings = make_settings(tmp_path, jwt_jwks_url=url, jwt_jwks_timeout=2)
    async with app_client(settings, f"postgresql://crm@127.0.0.1:{free_port()}/nowhere") as client:
        response = await client.get(LIST, headers=bearer(sign(key_a, "a")))
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "signing keys" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b"<html>not json</html>",
        b"[1, 2]",
        b'{"keys": []}',
        b'{"keys": [{"kty": "nope"}]}',
        b'{"keys": [{"kty": "oct", "k": "c2VjcmV0", "use": "enc", "kid": "a"}]}',
        b"\xff\xfe",
    ],
)
async def test_broken_key_set_is_503_not_500(
    offline: httpx.AsyncClient, jwks: JwksServer, key_a: rsa.RSAPrivateKey, body: bytes
) -> None:
    jwks.body = body
    response = await offline.get(LIST, headers=bearer(sign(key_a, "a")))
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "key set is unusable" in response.json()["detail"]
