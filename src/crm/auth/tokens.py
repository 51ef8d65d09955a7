"""Access-token verification for the Auth Service's JWTs (HS256, or RS256/ES256 by key or JWKS)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from crm.config import Settings
from crm.errors import Unauthorized

ROLES = ("admin", "manager", "employee")


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as the access token describes them."""

    user_id: UUID
    role: str
    email: str | None


class TokenVerifier:
    """Verifies access tokens against exactly one configured key source.

    The accepted algorithms come from the configuration, never from the token: a token
    that names `none`, or HS256 when we hold an RSA key (key confusion), is refused.
    """

    def __init__(self, settings: Settings) -> None:
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway = settings.jwt_leeway_seconds
        self._jwks: jwt.PyJWKClient | None = None
        self._key: Any
        if settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True, lifespan=300)
            self._key = None
            self.algorithms = settings.jwt_algorithms or ["RS256", "ES256"]
        elif settings.jwt_public_key:
            pem = settings.jwt_public_key.replace("\\n", "\n").encode()
            self._key = load_pem_public_key(pem)
            if settings.jwt_algorithms:
                self.algorithms = settings.jwt_algorithms
            elif isinstance(self._key, rsa.RSAPublicKey):
                self.algorithms = ["RS256"]
            elif isinstance(self._key, ec.EllipticCurvePublicKey):
                self.algorithms = ["ES256"]
            else:
                raise ValueError("JWT_PUBLIC_KEY must be an RSA or EC public key")
        else:
            self._key = settings.jwt_secret or settings.dev_jwt_secret()
            self.algorithms = ["HS256"]

    async def _signing_key(self, token: str) -> Any:
        if self._jwks is None:
            return self._key
        try:
            # PyJWKClient caches keys and refetches the set once on an unknown `kid`;
            # it uses blocking urllib, so keep it off the event loop.
            return (await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)).key
        except jwt.PyJWKClientError as exc:
            raise Unauthorized("token signing key not found") from exc

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise Unauthorized("malformed token") from exc
        if header.get("alg") not in self.algorithms:
            raise Unauthorized(f"token algorithm {header.get('alg')!r} is not accepted")
        key = await self._signing_key(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={
                    "require": ["exp"],
                    "verify_aud": self._audience is not None,
                    "verify_iss": self._issuer is not None,
                },
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthorized("token not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthorized("token audience not accepted") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized("token issuer not accepted") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthorized("token signature invalid") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"token lacks the {exc.claim!r} claim") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("invalid token") from exc
        return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    if claims.get("type") != "access":
        raise Unauthorized("not an access token")
    raw_id = claims.get("id", claims.get("sub"))
    try:
        user_id = UUID(str(raw_id)) if isinstance(raw_id, str) else None
    except ValueError:
        user_id = None
    if user_id is None:
        raise Unauthorized("token has no valid user id (`id` or `sub` must be a UUID)")
    role = claims.get("role")
    email = claims.get("email")
    # An unknown role is still an authenticated user: the permission check answers 403.
    return Principal(
        user_id=user_id,
        role=role if isinstance(role, str) else "",
        email=email if isinstance(email, str) else None,
    )


def issue_token(
    settings: Settings,
    *,
    role: str,
    user_id: UUID,
    email: str,
    ttl_seconds: int,
    token_type: str = "access",  # noqa: S107 - a claim value, not a password
) -> str:
    """Mint a token in the Auth Service's format, signed with the configured HS256 secret."""
    import time
    import uuid

    if settings.jwt_public_key or settings.jwt_jwks_url:
        raise ValueError("tokens can only be minted with an HS256 secret (JWT_SECRET or the dev secret)")
    now = int(time.time())
    claims = {
        "id": str(user_id),
        "email": email,
        "role": role,
        "type": token_type,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret or settings.dev_jwt_secret(), algorithm="HS256")
