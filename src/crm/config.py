"""Service configuration: one Settings object read from the environment and `.env`."""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Environment(StrEnum):
    development = "development"
    production = "production"


class ConfigurationError(RuntimeError):
    """The configuration cannot run the service; the message says what to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # --- runtime ---
    env: Environment = Field(default=Environment.development, alias="CRM_ENV")
    host: str = "127.0.0.1"
    port: int = Field(default=8003, ge=1, le=65535)
    data_dir: Path = Field(default=Path(".crm-data"), alias="CRM_DATA_DIR")

    # --- database ---
    # Unset: the embedded PostgreSQL under data_dir (development only).
    database_url: str | None = None
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=5, ge=0)
    db_pool_timeout: float = Field(default=5.0, gt=0)
    # PostgreSQL's statement_timeout; 0 turns it off, and the client-side limit with it.
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)
    # How much longer than statement_timeout the client waits for any answer of the database
    # before giving up on the connection: long enough that the server's own timeout (a clean,
    # rolled-back error) normally arrives first, short enough to bound a frozen database.
    db_client_timeout_margin_ms: int = Field(default=1_000, ge=0)

    # --- auth ---
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_jwks_url: str | None = None
    # Comma-separated in the environment (`RS256,ES256`); default: what the key source implies.
    jwt_algorithms: Annotated[list[str] | None, NoDecode] = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: int = Field(default=0, ge=0)
    jwt_jwks_timeout: float = Field(default=5.0, gt=0)
    # Minimum seconds between refetches of the JWKS triggered by an unknown `kid`.
    jwt_jwks_refetch_cooldown: float = Field(default=5.0, ge=0)

    # --- neighbours ---
    order_service_url: str | None = None
    order_service_timeout: float = Field(default=5.0, gt=0)
    # The token of calls made on nobody's behalf (`crm orders sync`); `crm token` mints one for development.
    order_service_token: str | None = None
    # Set: the service consumes the Order Service's order events into the projection.
    order_events_amqp_url: str | None = None
    order_events_exchange: str = Field(default="orders.events", min_length=1)
    order_events_queue: str = Field(default="crm.order-events", min_length=1)
    order_events_prefetch: int = Field(default=512, ge=1, le=5000)

    # --- trash (README, "History, trash and erasure") ---
    # Days a deleted record stays restorable before the purge removes it for good.
    trash_days: int = Field(default=30, ge=0, le=36_500, alias="CRM_TRASH_DAYS")
    # Seconds between the service's purge runs (one instance at a time); 0: only `crm purge`.
    trash_purge_interval: float = Field(default=600.0, ge=0, alias="CRM_TRASH_PURGE_INTERVAL")
    # Deletions purged per transaction: each holds its locks only that long.
    trash_purge_batch: int = Field(default=500, ge=1, le=100_000, alias="CRM_TRASH_PURGE_BATCH")

    # --- events (crm.events: the relay, the feed, retention; README, "Events") ---
    # Set: the relay publishes each event to RabbitMQ. Unset: it still runs and marks each
    # event published (into the pull feed) as it finds it, so the feed works without a broker.
    events_amqp_url: str | None = None
    events_exchange: str = Field(default="crm.events", min_length=1)
    # Off: no relay in this process (another instance, or none: events wait in the outbox).
    events_relay_enabled: bool = True
    events_relay_batch: int = Field(default=500, ge=1, le=10_000)
    # Seconds between looks at the outbox when the last one found nothing to publish.
    events_relay_poll_interval: float = Field(default=0.05, gt=0, le=10)
    # Seconds a batch's publisher confirms may take before the batch counts as failed.
    events_publish_timeout: float = Field(default=10.0, gt=0)
    # Published events are kept this long, then purged in batches (never an unpublished one).
    events_retention_days: float = Field(default=7, gt=0)

    # --- webhooks (README, "Webhooks") ---
    # The dispatcher task that sends due deliveries; every instance may run one (they share the work).
    webhook_dispatcher_enabled: bool = True
    # Seconds before each retry of a failed attempt, comma-separated; after the last, the delivery fails.
    webhook_retry_schedule: Annotated[list[float], NoDecode] = [5, 300, 1800, 7200, 18000, 36000, 36000]
    # An attempt succeeds on a 2xx answered within this many seconds (connecting and reading included).
    webhook_timeout: float = Field(default=10.0, gt=0)
    # Off: URLs resolving to loopback, private, link-local, multicast or reserved addresses are refused.
    webhook_allow_private_networks: bool = False
    # How long a rotated-out secret keeps signing beside the new one.
    webhook_secret_overlap_seconds: float = Field(default=86_400, ge=0)
    # A subscription whose every delivery failed for this long is disabled.
    webhook_disable_after_seconds: float = Field(default=5 * 86_400, gt=0)
    # How often the dispatcher looks for due deliveries when nothing woke it.
    webhook_poll_interval: float = Field(default=1.0, gt=0)
    # Attempts in flight at once, per instance.
    webhook_concurrency: int = Field(default=16, ge=1, le=1000)
    # Succeeded and failed deliveries (with their attempts) are listed this long, then purged.
    webhook_delivery_retention_days: float = Field(default=30, gt=0)

    # --- logging ---
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["json", "console"] = "json"

    # --- HTTP limits ---
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)

    # --- abuse limits ---
    # Requests per user per minute; 0 disables. Counters live in Redis when REDIS_URL is set
    # (shared by every instance), else in each process's memory.
    rate_limit_per_minute: int = Field(default=600, ge=0)
    redis_url: str | None = None
    # Comma-separated origins allowed by CORS; empty: CORS stays off.
    cors_origins: str = ""

    # --- operations (README, "Operating it") ---
    # GET /metrics for Prometheus; off: no route and no per-request counting.
    metrics_enabled: bool = True
    # When set, /metrics answers only requests bearing it (`Authorization: Bearer <token>`).
    metrics_token: str | None = None
    # Traces are configured by the standard OTEL_* variables, read by crm.observability.tracing.

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @field_validator("env", "log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _split_schedule(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule_not_negative(cls, value: list[float]) -> list[float]:
        if any(delay < 0 for delay in value):
            raise ValueError("retry delays are seconds, 0 or more")
        return value

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        if isinstance(value, str):
            names = [part.strip() for part in value.split(",") if part.strip()]
            return names or None
        return value

    @field_validator(
        "database_url",
        "jwt_secret",
        "jwt_public_key",
        "jwt_jwks_url",
        "jwt_issuer",
        "jwt_audience",
        "order_service_url",
        "order_service_token",
        "order_events_amqp_url",
        "events_amqp_url",
        "redis_url",
        "metrics_token",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `.env.example` copies leave `FOO=` lines; treat them as "not configured".
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def db_client_timeout(self) -> float | None:
        """Seconds any one database call may take on the client's side (None: no limit)."""
        if self.db_statement_timeout_ms == 0:
            return None
        return (self.db_statement_timeout_ms + self.db_client_timeout_margin_ms) / 1000

    @property
    def is_production(self) -> bool:
        return self.env is Environment.production

    @property
    def has_explicit_jwt(self) -> bool:
        return bool(self.jwt_secret or self.jwt_public_key or self.jwt_jwks_url)

    def check_production(self) -> None:
        """Refuse to run production on development defaults, naming every missing setting."""
        if not self.is_production:
            return
        missing = []
        if not self.database_url:
            missing.append("DATABASE_URL")
        if not self.has_explicit_jwt:
            missing.append("JWT_SECRET (or JWT_PUBLIC_KEY / JWT_JWKS_URL)")
        if missing:
            raise ConfigurationError("CRM_ENV=production requires " + " and ".join(missing) + " to be set")

    def dev_jwt_secret(self) -> str:
        """The development signing secret: generated once, kept in the data dir.

        `crm token` and the server read the same file, so tokens minted on the
        command line are accepted by a server started with no JWT setting.
        """
        path = self.data_dir / "jwt-secret"
        if path.exists():
            return _usable_secret(path)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        # Write-then-rename so two processes starting at once agree on one secret.
        tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        # Created 0600 (not chmod-ed after writing): the secret is never readable by others.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret)
        try:
            path.hardlink_to(tmp)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        return _usable_secret(path)


def _usable_secret(path: Path) -> str:
    # The file only ever appears complete (hard link of a written file), so a short one was
    # edited by hand; an empty HS256 key would let anyone mint tokens, so refuse to use it.
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise ConfigurationError(f"{path} holds no usable secret (under 32 characters); delete it to generate one")
    return secret


@lru_cache
def get_settings() -> Settings:
    return Settings()
