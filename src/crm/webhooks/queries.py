"""The statements of webhooks, on the ORM session of a request or of the dispatcher."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import RowMapping, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Text, Uuid

_SUBSCRIPTION_COLUMNS = """
    id, url, events, description, enabled, disabled_reason, disabled_at, previous_secret_expires_at,
    failing_since, created_at, updated_at
"""

_INSERT = text(
    f"""
    INSERT INTO webhook_subscriptions (url, events, description, secret)
    VALUES (:url, :events, :description, :secret)
    RETURNING {_SUBSCRIPTION_COLUMNS}
    """  # noqa: S608 - column names, no input
).bindparams(bindparam("events", type_=ARRAY(Text)))


async def insert(
    session: AsyncSession, url: str, events: list[str], description: str | None, secret: str
) -> RowMapping:
    result = await session.execute(
        _INSERT, {"url": url, "events": events, "description": description, "secret": secret}
    )
    return result.mappings().one()


async def all_subscriptions(session: AsyncSession) -> Sequence[RowMapping]:
    result = await session.execute(
        text(f"SELECT {_SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions ORDER BY created_at, id")  # noqa: S608
    )
    return result.mappings().all()


async def subscription(session: AsyncSession, subscription_id: UUID, *, lock: bool = False) -> RowMapping | None:
    statement = f"SELECT {_SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions WHERE id = :id"  # noqa: S608
    result = await session.execute(text(statement + (" FOR UPDATE" if lock else "")), {"id": subscription_id})
    return result.mappings().one_or_none()


async def update(session: AsyncSession, subscription_id: UUID, values: dict[str, Any]) -> RowMapping:
    """Set the given columns (names from the service, never from a client) and bump updated_at."""
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    statement = text(
        f"UPDATE webhook_subscriptions SET {assignments}, updated_at = now() WHERE id = :id "  # noqa: S608
        f"RETURNING {_SUBSCRIPTION_COLUMNS}"
    )
    if "events" in values:
        statement = statement.bindparams(bindparam("events", type_=ARRAY(Text)))
    result = await session.execute(statement, {**values, "id": subscription_id})
    return result.mappings().one()


async def delete(session: AsyncSession, subscription_id: UUID) -> bool:
    result = await session.execute(
        text("DELETE FROM webhook_subscriptions WHERE id = :id RETURNING id"), {"id": subscription_id}
    )
    return result.first() is not None


async def rotate(
    session: AsyncSession, subscription_id: UUID, secret: str, overlap_seconds: float
) -> RowMapping | None:
    result = await session.execute(
        text(
            f"""
            UPDATE webhook_subscriptions
            SET previous_secret = secret, secret = :secret,
                previous_secret_expires_at = now() + make_interval(secs => :overlap), updated_at = now()
            WHERE id = :id
            RETURNING {_SUBSCRIPTION_COLUMNS}
            """  # noqa: S608
        ),
        {"id": subscription_id, "secret": secret, "overlap": overlap_seconds},
    )
    return result.mappings().one_or_none()


_DELIVERY_COLUMNS = """
    d.id, d.position, d.subscription_id, d.event_id, d.type, d.customer_id, d.sequence, d.status,
    d.next_attempt_at, d.created_at, d.completed_at,
    COALESCE((
        SELECT jsonb_agg(jsonb_build_object(
            'number', a.number, 'at', a.at, 'status_code', a.status_code, 'error', a.error,
            'duration_ms', a.duration_ms, 'response', a.response, 'next_attempt_at', a.next_attempt_at
        ) ORDER BY a.number)
        FROM webhook_attempts a WHERE a.delivery_id = d.id
    ), '[]'::jsonb) AS attempt_log
"""

_TEST_DELIVERY = text(
    f"""
    WITH made AS (
        INSERT INTO webhook_deliveries AS d (subscription_id, event_id, type, payload)
        VALUES (:subscription_id, :event_id, 'crm.webhook.test', :payload)
        RETURNING *
    )
    SELECT {_DELIVERY_COLUMNS} FROM made d
    """  # noqa: S608
).bindparams(bindparam("payload", type_=JSONB), bindparam("event_id", type_=Uuid))


async def insert_test_delivery(
    session: AsyncSession, subscription_id: UUID, event_id: UUID, payload: dict[str, Any]
) -> RowMapping:
    result = await session.execute(
        _TEST_DELIVERY, {"subscription_id": subscription_id, "event_id": event_id, "payload": payload}
    )
    return result.mappings().one()


async def deliveries(
    session: AsyncSession, subscription_id: UUID, status: str | None, before: int | None, limit: int
) -> Sequence[RowMapping]:
    """A page of a subscription's deliveries, newest first, each with its attempts (limit + 1 rows)."""
    result = await session.execute(
        text(
            f"""
            SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d
            WHERE d.subscription_id = :id
              AND (CAST(:status AS text) IS NULL OR d.status = :status)
              AND (CAST(:before AS bigint) IS NULL OR d.position < :before)
            ORDER BY d.position DESC
            LIMIT :limit
            """  # noqa: S608
        ),
        {"id": subscription_id, "status": status, "before": before, "limit": limit + 1},
    )
    return result.mappings().all()


async def delivery(session: AsyncSession, subscription_id: UUID, delivery_id: UUID) -> RowMapping | None:
    result = await session.execute(
        text(
            f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d "  # noqa: S608
            "WHERE d.subscription_id = :subscription_id AND d.id = :id FOR UPDATE OF d"
        ),
        {"subscription_id": subscription_id, "id": delivery_id},
    )
    return result.mappings().one_or_none()


async def held_back(session: AsyncSession, delivery: RowMapping) -> bool:
    """Whether an earlier delivery of the same customer to the same subscription is still pending."""
    if delivery["customer_id"] is None:
        return False
    result = await session.execute(
        text(
            """
            SELECT EXISTS (
                SELECT FROM webhook_deliveries p
                WHERE p.subscription_id = :subscription_id AND p.customer_id = :customer_id
                  AND p.status = 'pending' AND p.sequence < :sequence
            )
            """
        ),
        {
            "subscription_id": delivery["subscription_id"],
            "customer_id": delivery["customer_id"],
            "sequence": delivery["sequence"],
        },
    )
    return bool(result.scalar_one())


async def retry_now(session: AsyncSession, delivery_id: UUID) -> RowMapping | None:
    """Pending again, due now, with the whole schedule ahead (the attempts so far stay listed).

    None while an attempt of it is in flight (leased): a second one beside it would race it.
    """
    result = await session.execute(
        text(
            f"""
            WITH again AS (
                UPDATE webhook_deliveries
                SET status = 'pending', next_attempt_at = now(), schedule_start = attempts,
                    lease_until = NULL, completed_at = NULL
                WHERE id = :id AND (lease_until IS NULL OR lease_until < now())
                RETURNING *
            )
            SELECT {_DELIVERY_COLUMNS} FROM again d
            """  # noqa: S608
        ),
        {"id": delivery_id},
    )
    return result.mappings().one_or_none()


# --- the dispatcher ---------------------------------------------------------------------

# The due deliveries that are the head of their (subscription, customer) queue: no earlier
# one of theirs is pending, whether waiting for a retry or in flight (a claimed delivery stays
# pending, leased, until its outcome is written). So one pair never has two in flight, and a
# later event never overtakes an earlier one. (The ones behind a head normally have no
# `next_attempt_at` at all, sql/deliveries.sql; the NOT EXISTS keeps the order whatever
# scheduled them.) Instances share the work: a claimed row is
# leased (and row-locked while being claimed, SKIP LOCKED), so no two send the same.
_CLAIM = text(
    """
    WITH due AS (
        SELECT d.id, d.event_id, d.subscription_id
        FROM webhook_deliveries d
        JOIN webhook_subscriptions s ON s.id = d.subscription_id AND s.enabled
        WHERE d.status = 'pending' AND d.next_attempt_at <= now()
          AND (d.lease_until IS NULL OR d.lease_until < now())
          AND (d.customer_id IS NULL OR NOT EXISTS (
                SELECT FROM webhook_deliveries p
                WHERE p.subscription_id = d.subscription_id AND p.customer_id = d.customer_id
                  AND p.status = 'pending' AND p.sequence < d.sequence))
        ORDER BY d.next_attempt_at, d.position
        LIMIT :limit
        FOR UPDATE OF d SKIP LOCKED
    ), claimed AS (
        UPDATE webhook_deliveries d SET lease_until = now() + make_interval(secs => :lease)
        FROM due WHERE d.id = due.id
        RETURNING d.id, d.event_id, d.subscription_id, d.customer_id, d.type, d.payload, d.attempts, d.schedule_start
    )
    SELECT c.id, c.event_id, c.type, c.payload, c.attempts, c.schedule_start, c.subscription_id, c.customer_id,
           s.url, s.secret,
           CASE WHEN s.previous_secret_expires_at > now() THEN s.previous_secret END AS previous_secret,
           e.id AS e_id, e.type AS e_type, e.subject AS e_subject, e.time AS e_time,
           e.customer_id AS e_customer_id, e.sequence AS e_sequence, e.data AS e_data
    FROM claimed c
    JOIN webhook_subscriptions s ON s.id = c.subscription_id
    LEFT JOIN events e ON e.id = c.event_id AND c.payload IS NULL
    """
)


async def claim(session: AsyncSession, limit: int, lease_seconds: float) -> Sequence[RowMapping]:
    result = await session.execute(_CLAIM, {"limit": limit, "lease": lease_seconds})
    return result.mappings().all()


_ATTEMPT = text(
    """
    WITH attempt AS (
        UPDATE webhook_deliveries
        SET attempts = attempts + 1, lease_until = NULL,
            status = CAST(:status AS text),
            next_attempt_at = CAST(:next_attempt_at AS timestamptz),
            completed_at = CASE WHEN CAST(:status AS text) = 'pending' THEN NULL ELSE now() END
        WHERE id = :id
        RETURNING id, attempts
    )
    INSERT INTO webhook_attempts (delivery_id, number, at, status_code, error, duration_ms, response, next_attempt_at)
    SELECT id, attempts, :at, :status_code, :error, :duration_ms, :response, :next_attempt_at FROM attempt
    """
)


async def record_attempt(
    session: AsyncSession,
    delivery_id: UUID,
    *,
    status: str,
    at: datetime,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    response: str | None,
    next_attempt_at: datetime | None,
) -> None:
    await session.execute(
        _ATTEMPT,
        {
            "id": delivery_id,
            "status": status,
            "at": at,
            "status_code": status_code,
            "error": error,
            "duration_ms": duration_ms,
            "response": response,
            "next_attempt_at": next_attempt_at,
        },
    )


async def schedule_next(session: AsyncSession, subscription_id: UUID, customer_id: UUID) -> None:
    """The head of a queue is done: schedule the delivery behind it, due now.

    The customer's `event_sequences` row first (FOR SHARE): a writer of that customer holds it
    until its commit, so a delivery it is writing is committed, and seen by the next statement,
    before this looks (sql/deliveries.sql says why that matters).
    """
    await session.execute(
        text("SELECT FROM event_sequences WHERE customer_id = :customer_id FOR SHARE"), {"customer_id": customer_id}
    )
    await session.execute(
        text(
            """
            UPDATE webhook_deliveries SET next_attempt_at = now()
            WHERE id = (
                SELECT id FROM webhook_deliveries
                WHERE subscription_id = :subscription_id AND customer_id = :customer_id AND status = 'pending'
                ORDER BY sequence LIMIT 1
            ) AND next_attempt_at IS NULL
            """
        ),
        {"subscription_id": subscription_id, "customer_id": customer_id},
    )


async def purge_completed(session: AsyncSession, older_than_days: float, batch: int) -> int:
    """Delete up to `batch` deliveries completed before the retention window (their attempts go with them)."""
    result = await session.execute(
        text(
            """
            DELETE FROM webhook_deliveries WHERE id IN (
                SELECT id FROM webhook_deliveries
                WHERE status <> 'pending' AND completed_at < now() - make_interval(days => :days)
                LIMIT :batch
                FOR UPDATE SKIP LOCKED
            )
            """
        ),
        {"days": older_than_days, "batch": batch},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def subscription_succeeded(session: AsyncSession, subscription_id: UUID) -> None:
    await session.execute(
        text("UPDATE webhook_subscriptions SET failing_since = NULL WHERE id = :id AND failing_since IS NOT NULL"),
        {"id": subscription_id},
    )


async def subscription_failed(session: AsyncSession, subscription_id: UUID, disable_after_seconds: float) -> bool:
    """Note a failure; disable the subscription if it has failed every delivery that long. True if disabled now."""
    result = await session.execute(
        text(
            """
            UPDATE webhook_subscriptions
            SET failing_since = COALESCE(failing_since, now()),
                enabled = CASE WHEN failing_since <= now() - make_interval(secs => :after) THEN false ELSE enabled END,
                disabled_at = CASE WHEN enabled AND failing_since <= now() - make_interval(secs => :after)
                                   THEN now() ELSE disabled_at END,
                disabled_reason = CASE WHEN enabled AND failing_since <= now() - make_interval(secs => :after)
                                       THEN 'every delivery failed since ' || to_char(failing_since AT TIME ZONE 'UTC',
                                            'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '; PATCH enabled: true to resume'
                                       ELSE disabled_reason END
            WHERE id = :id
            RETURNING enabled
            """
        ),
        {"id": subscription_id, "after": disable_after_seconds},
    )
    row = result.first()
    return row is not None and not row[0]
