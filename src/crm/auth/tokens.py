"""Access-token verification for the Auth Service's JWTs (HS256, or RS256/ES256 by key or JWKS)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from crm.config import ConfigurationError, Settings
from crm.errors import ServiceUnavailable, Unauthorized

ROLES = ("admin", "manager", "employee")
# Distinct live tokens remembered per process (a few hundred bytes each).
_VERIFIED_CACHE_SIZE = 10_000

_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHMS = frozenset({"ES256", "ES384", "ES512"})


def _load_public_key(value: str) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    # Environments often carry the PEM on one line with literal "\n" separators.
    pem = value.replace("\\n", "\n").strip().encode()
    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError("JWT_PUBLIC_KEY is not a PEM-encoded public key") from exc
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ConfigurationError("JWT_PUBLIC_KEY must be an RSA or EC public key")
    return key


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
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._jwks: jwt.PyJWKClient | None = None
        self._key: Any
        if settings.jwt_jwks_url:
            self._jwks = jwt.PyJWKClient(
                settings.jwt_jwks_url,
                # No per-kid LRU cache: it never expires, so a key withdrawn from the set would be
                # accepted until a restart. The whole set is cached for `lifespan` seconds instead.
                cache_keys=False,
                lifespan=300,
                # urllib blocks a worker thread (and PyJWKClient's lock) for up to this long.
                timeout=settings.jwt_jwks_timeout,
                # An unknown `kid` refetches the set (key rotation), but at most once per cooldown,
                # so tokens with made-up kids cannot turn us into a flood against the Auth Service.
                cooldown_duration=settings.jwt_jwks_refetch_cooldown,
            )
            self._key = None
            self.algorithms = settings.jwt_algorithms or ["RS256", "ES256"]
            # Asymmetric only: a published set is public, so an HMAC ("oct") key in it is no secret.
            if not set(self.algorithms) <= _RSA_ALGORITHMS | _EC_ALGORITHMS:
                raise ConfigurationError(
                    f"JWT_ALGORITHMS {self.algorithms} must be RSA or EC algorithms with JWT_JWKS_URL"
                )
        elif settings.jwt_public_key:
            self._key = _load_public_key(settings.jwt_public_key)
            family = "RSA" if isinstance(self._key, rsa.RSAPublicKey) else "EC"
            self.algorithms = settings.jwt_algorithms or (["RS256"] if family == "RSA" else ["ES256"])
            # Only algorithms of the key's own family: HS256 with the PEM as the HMAC secret is the
            # classic key-confusion attack, and a mismatched family would fail at verification time.
            allowed = _RSA_ALGORITHMS if family == "RSA" else _EC_ALGORITHMS
            if not set(self.algorithms) <= allowed:
                raise ConfigurationError(
                    f"JWT_ALGORITHMS {self.algorithms} do not fit the {family} key in JWT_PUBLIC_KEY "
                    f"(allowed: {', '.join(sorted(allowed))})"
                )
        else:
            self._key = settings.jwt_secret or settings.dev_jwt_secret()
            self.algorithms = ["HS256"]

    async def _signing_key(self, token: str) -> Any:
        if self._jwks is None:
            return self._key
        # PyJWKClient uses blocking urllib: keep it off the event loop.
        return await asyncio.to_thread(self._jwks_key, self._jwks, token)

    @staticmethod
    def _jwks_key(client: jwt.PyJWKClient, token: str) -> jwt.PyJWK:
        """The PyJWK for the token's `kid`: a 401 if the token names no key we publish,
        a 503 if the key set itself cannot be fetched or used (the token may be fine)."""
        try:
            # The (cached) set first, so that its failures are told apart from an unknown kid.
            client.get_signing_keys()
        except (jwt.PyJWKClientConnectionError, OSError) as exc:
            # A 401 here would make clients throw away a good token.
            raise ServiceUnavailable("cannot fetch the token signing keys; retry shortly") from exc
        except (jwt.PyJWTError, ValueError) as exc:  # not JSON, not a set, no usable signing keys
            raise ServiceUnavailable("the token signing key set is unusable; retry shortly") from exc
        try:
            # Refetches the set on an unknown kid (rotation), at most once per cooldown. The PyJWK
            # itself (not its raw key) goes to decode(), which then insists that the token's `alg`
            # is the key's own algorithm.
            return client.get_signing_key_from_jwt(token)
        except (jwt.PyJWKClientConnectionError, OSError) as exc:
            raise ServiceUnavailable("cannot fetch the token signing keys; retry shortly") from exc
        except jwt.PyJWKClientError as exc:
            raise Unauthorized("token signing key not found") from exc
        except (jwt.PyJWTError, ValueError) as exc:
            # It parses the payload too: a good header with a garbage payload is the caller's fault.
            raise Unauthorized("malformed token") from exc

    async def verify(self, token: str) -> Principal:
        """The token's principal; 401 (or 503 for an unusable JWKS) when it is not acceptable.

        With a static key (secret or PEM) a verified token is remembered until its `exp`: the
        same bearer token arrives on every request of a session, and its signature and claims
        cannot change. Not with a JWKS, where a key withdrawn from the set must stop working.
        """
        principal = self.remembered(token)
        if principal is not None:
            return principal
        principal, expires = await self._verify(token)
        if self._jwks is None:
            self._verified[token] = (principal, expires + self._leeway)
            if len(self._verified) > _VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)  # oldest first: bounded memory
        return principal

    def remembered(self, token: str) -> Principal | None:
        """The principal of a token verified earlier and still valid, without verifying again."""
        remembered = self._verified.get(token)
        if remembered is None:
            return None
        principal, valid_until = remembered
        if time.time() < valid_until:
            return principal
        self._verified.pop(token, None)
        return None

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:  # DecodeError, or InvalidTokenError for a non-string `kid`
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
                    # `iat` is informational (RFC 7519 4.1.6); validity is `exp`/`nbf`. PyJWT would
                    # refuse an `iat` a second ahead of our clock, rejecting fresh tokens whenever
                    # the Auth Service's clock runs slightly ahead.
                    "verify_iat": False,
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
        except jwt.PyJWTError as exc:
            # Every other token problem (and key errors, which are not InvalidTokenError) is a 401.
            raise Unauthorized("invalid token") from exc
        return principal_from_claims(claims), _numeric_dates(claims)


# RFC 7519 4.1.4-4.1.6: NumericDate values, JSON numbers. PyJWT checks them with int(), which
# also takes a numeric string ("1735689600") or a boolean; so does not this service.
_NUMERIC_DATE_CLAIMS = ("exp", "nbf", "iat")


def _numeric_dates(claims: dict[str, Any]) -> float:
    """Refuse any of `exp`, `nbf`, `iat` that is not a finite JSON number; `exp` in seconds."""
    for name in _NUMERIC_DATE_CLAIMS:
        if name not in claims:
            continue
        value = claims[name]
        # bool is an int in Python; NaN and Infinity get through Python's JSON parser.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Unauthorized(f"token claim {name!r} must be a number")
        try:
            finite = math.isfinite(float(value))
        except OverflowError:  # an integer beyond any float
            finite = False
        if not finite:
            raise Unauthorized(f"token claim {name!r} must be a number")
    return float(claims["exp"])


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
