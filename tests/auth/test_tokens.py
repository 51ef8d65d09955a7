"""The 401 matrix for the default configuration (HS256 with JWT_SECRET), through HTTP."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.auth.support import (
    access_claims,
    app_client,
    assert_unauthorized,
    b64url_json,
    bearer,
    hs256_by_hand,
    make_settings,
    unsigned_token,
)
from tests.conftest import TEST_JWT_SECRET
from tests.helpers import TokenFactory

LIST = "/api/customers"


def sign(claims: dict[str, Any], secret: str = TEST_JWT_SECRET, algorithm: str = "HS256", **headers: Any) -> str:
    return jwt.encode(claims, secret, algorithm=algorithm, headers=headers or None)


async def test_valid_token_is_accepted(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.get(LIST, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["customers"] == []


async def test_no_token(offline: httpx.AsyncClient) -> None:
    response = await offline.get(LIST)
    assert_unauthorized(response, "missing bearer token")
    # RFC 6750 3.1: a request without credentials gets the challenge but no error code.
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic YWRtaW46YWRtaW4=",
        "Token abc.def.ghi",
        "Bearer",
        "Bearer ",
        "bearer",
        "Digest username=admin",
    ],
)
async def test_not_a_bearer_credential(offline: httpx.AsyncClient, authorization: str) -> None:
    response = await offline.get(LIST, headers={"Authorization": authorization})
    assert_unauthorized(response, "Bearer <token>")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_basic_credentials_for_a_real_user_are_still_refused(
    offline: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    # A valid token under the wrong scheme is not a bearer token.
    response = await offline.get(LIST, headers={"Authorization": f"Basic {tokens.token('admin')}"})
    assert_unauthorized(response)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "a.b.c",
        "....",
        "eyJhbGciOiJIUzI1NiJ9",  # a header alone
        "eyJhbGciOiJIUzI1NiJ9.e30",  # no signature part
        "eyJhbGciOiJIUzI1NiJ9.!!!.abc",  # payload not base64url
        b64url_json([1, 2]) + ".e30.abc",  # header is not an object
        b64url_json({"alg": "HS256"}) + "." + b64url_json([1]) + ".abc",  # payload is not an object
        "%%%.%%%.%%%",
        "\u00e9\u00e9.\u00e9.\u00e9",
    ],
)
async def test_malformed_token(offline: httpx.AsyncClient, token: str) -> None:
    response = await offline.get(LIST, headers={b"Authorization": f"Bearer {token}".encode()})
    body = assert_unauthorized(response)
    assert token not in body["detail"]
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_bad_signature(offline: httpx.AsyncClient) -> None:
    token = sign(access_claims(), secret="another-secret-" + "y" * 32)
    assert_unauthorized(await offline.get(LIST, headers=bearer(token)), "signature")


async def test_tampered_payload(offline: httpx.AsyncClient, tokens: TokenFactory) -> None:
    header, _, signature = tokens.token("employee").split(".")
    forged = f"{header}.{b64url_json(access_claims('admin'))}.{signature}"
    assert_unauthorized(await offline.get(LIST, headers=bearer(forged)), "signature")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none(offline: httpx.AsyncClient, alg: str) -> None:
    token = unsigned_token(access_claims(), {"alg": alg, "typ": "JWT"})
    assert token.endswith(".")
    assert_unauthorized(await offline.get(LIST, headers=bearer(token)), "algorithm")


async def test_alg_none_with_a_signature_part(offline: httpx.AsyncClient) -> None:
    token = unsigned_token(access_claims()) + "c2lnbmF0dXJl"
    assert_unauthorized(await offline.get(LIST, headers=bearer(token)))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("alg", ["HS384", "HS512"])
async def test_other_hmac_algorithm_with_the_right_secret(offline: httpx.AsyncClient, alg: str) -> None:
    token = sign(access_claims(), algorithm=alg)
    assert_unauthorized(await offline.get(LIST, headers=bearer(token)), f"{alg!r} is not accepted")


async def test_header_without_alg(offline: httpx.AsyncClient) -> None:
    token = hs256_by_hand(access_claims(), TEST_JWT_SECRET.encode(), header={"typ": "JWT"})
    assert_unauthorized(await offline.get(LIST, headers=bearer(token)), "algorithm")


async def test_alg_that_is_not_a_string(offline: httpx.AsyncClient) -> None:
    token = hs256_by_hand(access_claims(), TEST_JWT_SECRET.encode(), header={"alg": ["HS256"], "typ": "JWT"})
    assert_unauthorized(await offline.get(LIST, headers=bearer(token)), "algorithm")


@pytest.mark.parametrize("seconds_ago", [3600, 60, 1])
async def test_expired(offline: httpx.AsyncClient, seconds_ago: int) -> None:
    now = int(time.time())
    token = sign(access_claims(iat=now - 4000, exp=now - seconds_ago))
    assert_unauthorized(await offline.get(LIST, headers=bearer(token)), "expired")


async def test_expiring_in_a_few_seconds_is_still_valid(client: httpx.AsyncClient) -> None:
    token = sign(access_claims(exp=int(time.time()) + 5))
    assert (await client.get(LIST, headers=bearer(token))).status_code == 200


async def test_missing_exp(offline: httpx.AsyncClient) -> None:
    token = sign(access_claims(exp=None))
    assert "exp" not in jwt.decode(token, TEST_JWT_SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert_unauthorized(await offline.get(LIST, headers=bearer(token)), "'exp'")


@pytest.mark.parametrize("exp", ["tomorrow", float("inf"), float("nan"), None, [1], {"a": 1}, 1e300])
async def test_exp_that_is_not_a_time(client: httpx.AsyncClient, exp: Any) -> None:
    claims = access_claims()
    claims["exp"] = exp  # keeps None as JSON null, unlike access_claims(exp=None)
    token = sign(claims)
    response = await client.get(LIST, headers=bearer(token))
    if exp == 1e300:
        # Absurdly far in the future but a number: PyJWT accepts it as an integer.
        assert response.status_code == 200, response.text
    else:
        assert_unauthorized(response)


def _numeric_date_cases() -> list[Any]:
    soon, past = int(time.time()) + 3600, int(time.time()) - 60
    valid = {"exp": soon, "nbf": past, "iat": past}
    return [
        pytest.param(claim, bad, id=f"{claim}={bad!r}")
        for claim, good in valid.items()
        for bad in [str(good), f"{good}.0", True, False, None, "", [good], {"t": good}, float("inf"), float("nan")]
    ]


@pytest.mark.parametrize(("claim", "value"), _numeric_date_cases())
async def test_time_claims_must_be_json_numbers(offline: httpx.AsyncClient, claim: str, value: Any) -> None:
    """RFC 7519: `exp`, `nbf` and `iat` are NumericDates (JSON numbers); a numeric string, a
    boolean or null is an invalid token, however plausible the time it spells."""
    claims = access_claims()
    claims[claim] = value  # keeps None as JSON null
    assert_unauthorized(await offline.get(LIST, headers=bearer(sign(claims))))


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
async def test_time_claims_may_be_fractional_numbers(client: httpx.AsyncClient, claim: str) -> None:
    moment = time.time() + 3600.5 if claim == "exp" else time.time() - 60.5
    response = await client.get(LIST, headers=bearer(sign(access_claims(**{claim: moment}))))
    assert response.status_code == 200, response.text


async def test_not_yet_valid(offline: httpx.AsyncClient) -> None:
    token = sign(access_claims(nbf=int(time.time()) + 60))
    assert_unauthorized(await offline.get(LIST, headers=bearer(token)), "not valid yet")


async def test_nbf_in_the_past_is_fine(client: httpx.AsyncClient) -> None:
    token = sign(access_claims(nbf=int(time.time()) - 5))
    assert (await client.get(LIST, headers=bearer(token))).status_code == 200


async def test_iat_slightly_in_the_future_is_tolerated(client: httpx.AsyncClient) -> None:
    # The Auth Service's clock may run ahead of ours; `iat` is informational, validity is exp/nbf.
    token = sign(access_claims(iat=int(time.time()) + 30))
    assert (await client.get(LIST, headers=bearer(token))).status_code == 200


@pytest.mark.parametrize("token_type", ["refresh", "ACCESS", "Access", "", "id", None])
async def test_not_an_access_token(offline: httpx.AsyncClient, token_type: str | None) -> None:
    claims = access_claims(type=token_type)
    if token_type is None:
        assert "type" not in claims
    token = sign(claims)
    assert_unauthorized(await offline.get(LIST, headers=bearer(token)), "not an access token")


async def test_refresh_token_of_the_auth_service_shape(offline: httpx.AsyncClient, tokens: TokenFactory) -> None:
    token = tokens.token("admin", type="refresh")
    assert jwt.decode(token, TEST_JWT_SECRET, algorithms=["HS256"])["type"] == "refresh"
    assert_unauthorized(await offline.get(LIST, headers=bearer(token)), "not an access token")


@pytest.mark.parametrize(
    "overrides",
    [
        {"id": None},
        {"id": "not-a-uuid"},
        {"id": ""},
        {"id": 42},
        {"id": str(uuid.uuid4())[:-1]},
        {"id": None, "sub": "user-42"},
        {"id": ["6f1c1b1e-8f1e-4c47-9b36-2a7c9c1b7a11"]},
        {"id": "not-a-uuid", "sub": "6f1c1b1e-8f1e-4c47-9b36-2a7c9c1b7a11"},
    ],
    ids=["missing", "not-uuid", "empty", "integer", "truncated", "sub-not-uuid", "list", "bad-id-good-sub"],
)
async def test_missing_or_invalid_user_id(offline: httpx.AsyncClient, overrides: dict[str, Any]) -> None:
    token = sign(access_claims(**overrides))
    assert_unauthorized(await offline.get(LIST, headers=bearer(token)), "user id")


async def test_sub_that_is_not_a_string(offline: httpx.AsyncClient) -> None:
    # RFC 7519 makes `sub` a string; PyJWT refuses other types before we look for a UUID.
    token = sign(access_claims(id=None, sub=42))
    assert_unauthorized(await offline.get(LIST, headers=bearer(token)), "invalid token")


async def test_explicit_null_id_is_invalid(offline: httpx.AsyncClient) -> None:
    claims = access_claims()
    claims["id"] = None
    assert_unauthorized(await offline.get(LIST, headers=bearer(sign(claims))), "user id")


async def test_sub_instead_of_id_is_accepted(client: httpx.AsyncClient) -> None:
    user_id = uuid.uuid4()
    token = sign(access_claims("admin", id=None, sub=str(user_id)))
    created = await client.post(
        "/api/customers", json={"first_name": "Sub", "last_name": "Claim"}, headers=bearer(token)
    )
    assert created.status_code == 201, created.text
    # The creator from `sub` became the owner: the id was really read from that claim.
    assert created.json()["owner_id"] == str(user_id)


async def test_id_is_the_user(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    user_id = uuid.uuid4()
    created = await client.post(
        "/api/customers", json={"first_name": "Id", "last_name": "Claim"}, headers=tokens.headers("manager", user_id)
    )
    assert created.status_code == 201, created.text
    assert created.json()["owner_id"] == str(user_id)


async def test_detail_never_echoes_the_token(offline: httpx.AsyncClient) -> None:
    token = sign(access_claims(type="refresh"))
    response = await offline.get(LIST, headers=bearer(token))
    assert_unauthorized(response)
    assert token not in response.text
    assert token.split(".")[1] not in response.text


@pytest.mark.parametrize("role", ["auditor", "", "ADMIN", "admin ", None])
async def test_unknown_role_is_forbidden_not_unauthorized(offline: httpx.AsyncClient, role: str | None) -> None:
    claims = access_claims("admin")
    claims["role"] = role
    claims = {k: v for k, v in claims.items() if v is not None}
    if role is None:
        assert "role" not in claims
    response = await offline.get(LIST, headers=bearer(sign(claims)))
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:crm:problem:forbidden"
    assert "www-authenticate" not in response.headers


# --- issuer and audience --------------------------------------------------------------------


@pytest.fixture
async def strict_client(tmp_path: Path, database_url: str) -> Any:
    settings = make_settings(
        tmp_path, jwt_secret=TEST_JWT_SECRET, jwt_issuer="https://auth.example.com", jwt_audience="crm"
    )
    async with app_client(settings, database_url) as client:
        yield client


@pytest.mark.parametrize(
    ("overrides", "detail"),
    [
        ({"iss": "https://evil.example.com", "aud": "crm"}, "issuer"),
        ({"aud": "crm"}, "'iss'"),
        ({"iss": "https://auth.example.com", "aud": "orders"}, "audience"),
        ({"iss": "https://auth.example.com", "aud": ["orders", "billing"]}, "audience"),
        ({"iss": "https://auth.example.com"}, "'aud'"),
        ({"iss": "https://auth.example.com/", "aud": "crm"}, "issuer"),
        ({"iss": "https://auth.example.com", "aud": "CRM"}, "audience"),
    ],
)
async def test_wrong_issuer_or_audience(
    strict_client: httpx.AsyncClient, overrides: dict[str, Any], detail: str
) -> None:
    token = sign(access_claims(**overrides))
    assert_unauthorized(await strict_client.get(LIST, headers=bearer(token)), detail)


@pytest.mark.parametrize("aud", ["crm", ["orders", "crm"]])
async def test_right_issuer_and_audience(strict_client: httpx.AsyncClient, aud: str | list[str]) -> None:
    token = sign(access_claims(iss="https://auth.example.com", aud=aud))
    response = await strict_client.get(LIST, headers=bearer(token))
    assert response.status_code == 200, response.text


async def test_issuer_and_audience_ignored_when_not_configured(client: httpx.AsyncClient) -> None:
    token = sign(access_claims(iss="https://anyone.example.com", aud="anything"))
    assert (await client.get(LIST, headers=bearer(token))).status_code == 200
