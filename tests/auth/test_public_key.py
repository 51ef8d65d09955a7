"""RS256 / ES256 verification with JWT_PUBLIC_KEY (a PEM), including key confusion."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from crm.auth.tokens import TokenVerifier
from crm.config import ConfigurationError
from crm.main import create_app
from tests.auth.support import (
    access_claims,
    app_client,
    assert_unauthorized,
    bearer,
    ec_private_key,
    free_port,
    hs256_by_hand,
    make_settings,
    public_pem,
    rsa_private_key,
    unsigned_token,
)
from tests.conftest import TEST_JWT_SECRET

LIST = "/api/customers"
OFFLINE_DB = "postgresql://crm@127.0.0.1:1/nowhere"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa_private_key()


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec_private_key()


@pytest.fixture
async def rsa_client(tmp_path: Path, database_url: str, rsa_key: rsa.RSAPrivateKey) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, jwt_public_key=public_pem(rsa_key))
    async with app_client(settings, database_url) as client:
        yield client


@pytest.fixture(scope="module")
async def rsa_offline(
    tmp_path_factory: pytest.TempPathFactory, rsa_key: rsa.RSAPrivateKey
) -> AsyncIterator[httpx.AsyncClient]:
    """RS256-configured, unreachable database: for tokens that must be refused before any query."""
    settings = make_settings(tmp_path_factory.mktemp("rsa"), jwt_public_key=public_pem(rsa_key))
    async with app_client(settings, f"postgresql://crm@127.0.0.1:{free_port()}/nowhere") as client:
        yield client


@pytest.fixture
async def ec_client(
    tmp_path: Path, database_url: str, ec_key: ec.EllipticCurvePrivateKey
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, jwt_public_key=public_pem(ec_key))
    async with app_client(settings, database_url) as client:
        yield client


async def test_rs256_token_is_accepted(rsa_client: httpx.AsyncClient, rsa_key: rsa.RSAPrivateKey) -> None:
    user_id = uuid.uuid4()
    token = jwt.encode(access_claims("manager", user_id), rsa_key, algorithm="RS256")
    created = await rsa_client.post("/api/customers", json={"first_name": "R", "last_name": "S"}, headers=bearer(token))
    assert created.status_code == 201, created.text
    assert created.json()["owner_id"] == str(user_id)


async def test_es256_token_is_accepted(ec_client: httpx.AsyncClient, ec_key: ec.EllipticCurvePrivateKey) -> None:
    token = jwt.encode(access_claims("employee"), ec_key, algorithm="ES256")
    response = await ec_client.get(LIST, headers=bearer(token))
    assert response.status_code == 200, response.text


async def test_rs256_signed_by_another_key(rsa_offline: httpx.AsyncClient) -> None:
    token = jwt.encode(access_claims(), rsa_private_key(), algorithm="RS256")
    assert_unauthorized(await rsa_offline.get(LIST, headers=bearer(token)), "signature")


async def test_key_confusion_hs256_signed_with_the_public_pem(
    rsa_offline: httpx.AsyncClient, rsa_key: rsa.RSAPrivateKey
) -> None:
    # The attacker knows the public key and uses its PEM bytes as an HMAC secret.
    pem = public_pem(rsa_key)
    for secret in (pem.encode(), pem.strip().encode()):
        token = hs256_by_hand(access_claims("admin"), secret)
        assert_unauthorized(await rsa_offline.get(LIST, headers=bearer(token)), "'HS256' is not accepted")


async def test_hs256_with_a_shared_secret_is_refused_when_a_key_is_configured(rsa_offline: httpx.AsyncClient) -> None:
    token = jwt.encode(access_claims(), TEST_JWT_SECRET, algorithm="HS256")
    assert_unauthorized(await rsa_offline.get(LIST, headers=bearer(token)), "'HS256' is not accepted")


@pytest.mark.parametrize("alg", ["RS512", "PS256"])
async def test_other_rsa_algorithm_with_the_right_key(
    rsa_offline: httpx.AsyncClient, rsa_key: rsa.RSAPrivateKey, alg: str
) -> None:
    token = jwt.encode(access_claims(), rsa_key, algorithm=alg)
    assert_unauthorized(await rsa_offline.get(LIST, headers=bearer(token)), f"{alg!r} is not accepted")


async def test_es256_token_on_an_rsa_configured_service(rsa_offline: httpx.AsyncClient) -> None:
    token = jwt.encode(access_claims(), ec_private_key(), algorithm="ES256")
    assert_unauthorized(await rsa_offline.get(LIST, headers=bearer(token)), "'ES256' is not accepted")


async def test_alg_none_on_an_rsa_configured_service(rsa_offline: httpx.AsyncClient) -> None:
    assert_unauthorized(await rsa_offline.get(LIST, headers=bearer(unsigned_token(access_claims()))), "algorithm")


async def test_expired_and_refresh_rs256_tokens(rsa_offline: httpx.AsyncClient, rsa_key: rsa.RSAPrivateKey) -> None:
    expired = jwt.encode(access_claims(exp=1_700_000_000), rsa_key, algorithm="RS256")
    assert_unauthorized(await rsa_offline.get(LIST, headers=bearer(expired)), "expired")
    refresh = jwt.encode(access_claims(type="refresh"), rsa_key, algorithm="RS256")
    assert_unauthorized(await rsa_offline.get(LIST, headers=bearer(refresh)), "not an access token")


async def test_pem_with_escaped_newlines_from_an_env_file(
    tmp_path: Path, database_url: str, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    one_line = public_pem(ec_key).strip().replace("\n", "\\n")
    assert "\n" not in one_line
    settings = make_settings(tmp_path, jwt_public_key=one_line)
    async with app_client(settings, database_url) as client:
        token = jwt.encode(access_claims(), ec_key, algorithm="ES256")
        assert (await client.get(LIST, headers=bearer(token))).status_code == 200


def test_public_key_takes_precedence_over_a_secret(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    verifier = TokenVerifier(make_settings(tmp_path, jwt_public_key=public_pem(rsa_key), jwt_secret=TEST_JWT_SECRET))
    assert verifier.algorithms == ["RS256"]


def test_algorithms_default_to_the_key_family(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    assert TokenVerifier(make_settings(tmp_path, jwt_public_key=public_pem(rsa_key))).algorithms == ["RS256"]
    assert TokenVerifier(make_settings(tmp_path, jwt_public_key=public_pem(ec_key))).algorithms == ["ES256"]
    assert TokenVerifier(make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET)).algorithms == ["HS256"]


@pytest.mark.parametrize("algorithms", [["RS256", "HS256"], ["ES256"], ["none"]])
def test_algorithms_that_do_not_fit_the_key_refuse_to_start(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, algorithms: list[str]
) -> None:
    settings = make_settings(tmp_path, jwt_public_key=public_pem(rsa_key), jwt_algorithms=algorithms)
    with pytest.raises(ConfigurationError, match="do not fit the RSA key"):
        create_app(settings, database_url=OFFLINE_DB)


def test_algorithms_from_the_environment_are_comma_separated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    monkeypatch.setenv("JWT_ALGORITHMS", " ES256, ES384 ")
    settings = make_settings(tmp_path, jwt_public_key=public_pem(ec_key))
    assert settings.jwt_algorithms == ["ES256", "ES384"]
    assert TokenVerifier(settings).algorithms == ["ES256", "ES384"]


@pytest.mark.parametrize(
    "value",
    [
        "not a pem",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    ],
)
def test_unusable_public_key_refuses_to_start_with_a_clear_message(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigurationError, match="JWT_PUBLIC_KEY"):
        create_app(make_settings(tmp_path, jwt_public_key=value), database_url=OFFLINE_DB)


def test_a_private_key_is_not_a_public_key(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    from cryptography.hazmat.primitives import serialization

    private_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(ConfigurationError, match="JWT_PUBLIC_KEY"):
        create_app(make_settings(tmp_path, jwt_public_key=private_pem), database_url=OFFLINE_DB)
