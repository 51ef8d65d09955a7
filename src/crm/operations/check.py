"""`crm check`: whether each dependency of the configured service answers, and how fast.

Every configured dependency must answer for the check to pass, including those the service can
run without for a while (a configured Redis or Order Service that is down is a fault to fix, even
if the service degrades gracefully); an optional one that is not configured is only reported.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aiormq
import asyncpg
import httpx
import jwt
from alembic.script import ScriptDirectory
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy.engine import make_url

from crm.auth.tokens import TokenVerifier
from crm.broker.connection import safe_url
from crm.config import ConfigurationError, Settings
from crm.migrate import alembic_config

# A customer id no one has: the Order Service answers with an empty page, its cheapest answer.
_NO_CUSTOMER = "00000000-0000-0000-0000-000000000000"


class CheckFailed(Exception):
    """The dependency answered, but not as the service needs; the message says how."""


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    ok: bool | None  # None: optional and not configured
    detail: str
    ms: float | None = None

    def line(self) -> str:
        status = {True: "ok", False: "FAIL", None: "-"}[self.ok]
        latency = f"{self.ms:.0f} ms" if self.ms is not None else ""
        return f"{self.name:<14} {status:<5} {latency:>8}  {self.detail}"


async def run_checks(settings: Settings, database_url: str | None, wait_s: float) -> list[Result]:
    """The checks in a fixed order, one after the other, so each latency is that dependency's alone.

    `database_url` is None only where the embedded PostgreSQL is not allowed (production).
    """
    # Read before any clock starts: parsing the migration files is not the database's latency.
    scripts = ScriptDirectory.from_config(alembic_config())
    migrations = Migrations(set(scripts.get_heads()), {script.revision for script in scripts.walk_revisions()})
    # Made before any clock starts too: loading the CA bundle is not the Order Service's latency.
    # One bound for every check, _timed's, which cancels it; this one (like asyncpg's default) is
    # only a backstop, longer so that the report always says "no answer within N s".
    async with httpx.AsyncClient(timeout=wait_s + 1) as http:
        return [
            await _optional(
                "database",
                database_url,
                "DATABASE_URL unset",
                lambda url: _database(url, migrations),
                wait_s,
                required=True,
            ),
            await _optional(
                "redis",
                settings.redis_url,
                "REDIS_URL unset: rate-limit counters per process",
                _redis,
                wait_s,
            ),
            await _optional(
                "order service",
                settings.order_service_url,
                "ORDER_SERVICE_URL unset: order routes answer 503",
                lambda url: _order_service(http, url),
                wait_s,
            ),
            await _timed("jwt keys", lambda: _jwt_keys(settings, wait_s), wait_s),
            await _optional(
                "events broker",
                settings.events_amqp_url,
                "EVENTS_AMQP_URL unset: events go to the pull feed only",
                _broker,
                wait_s,
            ),
            await _optional(
                "order events",
                settings.order_events_amqp_url,
                "ORDER_EVENTS_AMQP_URL unset: order figures only from `crm orders sync`",
                _broker,
                wait_s,
            ),
        ]


@dataclass(frozen=True, slots=True)
class Migrations:
    heads: set[str]
    known: set[str]


def settings_result(settings: Settings) -> Result:
    try:
        settings.check_production()
    except ConfigurationError as exc:
        return Result("settings", ok=False, detail=str(exc))
    return Result("settings", ok=True, detail=f"CRM_ENV={settings.env.value}")


async def _optional(
    name: str,
    url: str | None,
    unset: str,
    check: Callable[[str], Awaitable[str]],
    wait_s: float,
    *,
    required: bool = False,
) -> Result:
    if url is None:
        return Result(name, ok=False if required else None, detail=f"not configured ({unset})")
    return await _timed(name, lambda: check(url), wait_s)


async def _timed(name: str, check: Callable[[], Awaitable[str]], wait_s: float) -> Result:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check(), wait_s)
    except (CheckFailed, ConfigurationError) as exc:
        ok, detail = False, str(exc)
    except TimeoutError:
        ok, detail = False, f"no answer within {wait_s:g} s"
    except Exception as exc:  # noqa: BLE001 - whatever went wrong is the report, not a crash
        ok, detail = False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    else:
        ok = True
    return Result(name, ok=ok, detail=detail, ms=(time.perf_counter() - started) * 1000)


async def _database(database_url: str, migrations: Migrations) -> str:
    url = make_url(database_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        version = await conn.fetchval("SHOW server_version")
        applied: set[str] = set()
        if await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
            applied = {row["version_num"] for row in await conn.fetch("SELECT version_num FROM alembic_version")}
    finally:
        await conn.close()
    heads = migrations.heads
    where = f"PostgreSQL {version} at {url.render_as_string(hide_password=True)}"
    if applied == heads:
        return f"{where}; migrations current ({', '.join(sorted(heads))})"
    if applied - migrations.known:
        raise CheckFailed(
            f"{where}; database at {', '.join(sorted(applied))}, which this release does not know "
            "(migrated by a newer one?)"
        )
    raise CheckFailed(
        f"{where}; migrations behind: database at {', '.join(sorted(applied)) or 'none'}, "
        f"this release at {', '.join(sorted(heads))} (`crm migrate` or `crm serve` applies them)"
    )


async def _redis(url: str) -> str:
    client = Redis.from_url(url, retry=Retry(NoBackoff(), 0))
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    return f"Redis {info['redis_version']} at {_without_password(url)}"


async def _broker(url: str) -> str:
    """An AMQP connection opened and closed: the broker's product and version. Not needed to
    serve (events wait in the outbox, order events in their queue), but configured, so checked."""
    connection = await aiormq.connect(url)
    try:
        properties = connection.server_properties
    finally:
        await connection.close()
    product, version = (_text(properties.get(key, "?")) for key in ("product", "version"))
    return f"{product} {version} at {safe_url(url)}"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _order_service(http: httpx.AsyncClient, base_url: str) -> str:
    url = f"{base_url.rstrip('/')}/api/orders"
    try:
        response = await http.get(url, params={"customerId": _NO_CUSTOMER, "limit": "1"})
    except httpx.HTTPError as exc:
        raise CheckFailed(f"GET {url}: {type(exc).__name__}: {exc}") from exc
    answered = f"GET {url}: HTTP {response.status_code}"
    if response.is_success:
        return answered
    # The Order Service wants the caller's token, which a check has not got: refusing it still answers.
    if response.status_code in {401, 403}:
        return f"{answered} (answers; it wants a caller's token)"
    raise CheckFailed(answered)


async def _jwt_keys(settings: Settings, wait_s: float) -> str:
    if not settings.has_explicit_jwt:
        if settings.is_production:
            raise CheckFailed("not configured (JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL is required in production)")
        path = settings.data_dir / "jwt-secret"
        if not path.exists():
            return f"HS256 development secret, created in {path} by the first `crm serve` or `crm token`"
        settings.dev_jwt_secret()  # raises ConfigurationError for an unusable file
        return f"HS256 development secret in {path}"
    # The service's own validation: an unreadable PEM or algorithms that do not fit the key.
    verifier = TokenVerifier(settings)
    if settings.jwt_jwks_url:
        # The same client and parsing as the service. It blocks on urllib, so it runs in a thread,
        # which cannot be cancelled: its own timeout ends it within the check's time.
        client = jwt.PyJWKClient(settings.jwt_jwks_url, timeout=min(wait_s, settings.jwt_jwks_timeout))
        keys = await asyncio.to_thread(client.get_signing_keys)
        algorithms = sorted({key.algorithm_name for key in keys})
        usable = [name for name in algorithms if name in verifier.algorithms]
        summary = (
            f"JWKS {settings.jwt_jwks_url}: {len(keys)} signing key{'s' * (len(keys) != 1)} ({', '.join(algorithms)})"
        )
        if not usable:
            raise CheckFailed(f"{summary}, none for the accepted algorithms {', '.join(verifier.algorithms)}")
        return summary
    if settings.jwt_public_key:
        return f"{', '.join(verifier.algorithms)} public key (JWT_PUBLIC_KEY)"
    return "HS256 secret (JWT_SECRET)"


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    credentials, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{credentials.split(':', 1)[0]}:***@{host}"))
