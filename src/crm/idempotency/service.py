"""Idempotent POSTs: the same Idempotency-Key, user and body within 24 h replay the first answer.

Protocol, all inside the request's one transaction:
1. take a transaction-scoped advisory lock on (user, key) without waiting: if another
   request holds it, that request is still running -> 409;
2. a stored answer for (user, key) younger than 24 h: same fingerprint -> replay it,
   different -> 422;
3. otherwise run the write and store its answer; both commit together or not at all, so a
   failed or rolled-back attempt leaves no key behind and can simply be retried.

Storing a key also deletes a bounded batch of expired ones, so the table stays about one
day's worth of keys without a scheduler.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from crm.api import Call
from crm.common.concurrency import etag
from crm.errors import Conflict, ValidationFailed
from crm.idempotency.models import IdempotencyKey
from crm.observability.metrics import IDEMPOTENT_REPLAYS

HEADER = "Idempotency-Key"
RETENTION = timedelta(hours=24)
# Expired keys deleted per stored key: more than one, so the sweep outpaces any arrival rate.
SWEEP_BATCH = 100


@dataclass(frozen=True, slots=True)
class Answer:
    """A write's answer, kept byte for byte so a replay is indistinguishable from the original."""

    status_code: int
    body: str
    headers: dict[str, str]

    def response(self, *, replayed: bool = False) -> Response:
        headers = {**self.headers, "Idempotent-Replayed": "true"} if replayed else self.headers
        return Response(self.body, status_code=self.status_code, media_type="application/json", headers=headers)


def fingerprint(method: str, path: str, payload: Any) -> str:
    """Same route and same JSON body (whatever the key order or whitespace) -> same fingerprint."""
    canonical = json.dumps([method, path, payload], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def created(body: BaseModel, location: str, version: int) -> Answer:
    """The 201 answer of a create: body, Location and ETag, ready to send and to store."""
    return Answer(201, body.model_dump_json(by_alias=True), {"Location": location, "ETag": etag(version)})


async def create_once(call: Call[Any, Any], write: Callable[[], Awaitable[Answer]]) -> Response:
    """Run a create's `write` at most once per Idempotency-Key (the protocol in the module doc).

    The endpoint declares the `Idempotency-Key` header as its `idempotency_key` parameter and a
    JSON body; the fingerprint is the route and that body.
    """
    key = call.params.idempotency_key
    if key is None:
        # Most creates carry no key: no fingerprint (a dump and a hash of the body) to make.
        return (await write()).response()
    print_ = fingerprint(call.scope["method"], call.path, call.body.model_dump(mode="json"))
    return await run_once(call.session, call.user.user_id, key, print_, write)


async def run_once(
    session: AsyncSession,
    user_id: UUID,
    key: str | None,
    print_: str,
    write: Callable[[], Awaitable[Answer]],
) -> Response:
    if key is None:
        return (await write()).response()

    locked = await session.scalar(select(func.pg_try_advisory_xact_lock(func.hashtextextended(f"{user_id}:{key}", 0))))
    if not locked:
        raise Conflict(f"a request with this {HEADER} is still in progress; retry after it finishes")

    stored = await session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at > func.now() - RETENTION,
        )
    )
    if stored is not None:
        if stored.fingerprint != print_:
            raise ValidationFailed.field(HEADER, "was already used with a different request body")
        IDEMPOTENT_REPLAYS.inc()
        return Answer(stored.status_code, stored.body, stored.headers).response(replayed=True)

    answer = await write()
    await _sweep_expired(session)
    values = {
        "user_id": user_id,
        "key": key,
        "fingerprint": print_,
        "status_code": answer.status_code,
        "body": answer.body,
        "headers": answer.headers,
    }
    # An expired row for the same key is overwritten: the key starts a new 24 h life.
    stmt = insert(IdempotencyKey).values(values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[IdempotencyKey.user_id, IdempotencyKey.key],
            set_={**{k: stmt.excluded[k] for k in values if k not in {"user_id", "key"}}, "created_at": func.now()},
        )
    )
    return answer.response()


async def _sweep_expired(session: AsyncSession) -> None:
    # SKIP LOCKED: rows another transaction is sweeping (or re-using) are left to it, never waited on.
    expired = (
        select(IdempotencyKey.user_id, IdempotencyKey.key)
        .where(IdempotencyKey.created_at <= func.now() - RETENTION)
        .limit(SWEEP_BATCH)
        .with_for_update(skip_locked=True)
    )
    await session.execute(delete(IdempotencyKey).where(tuple_(IdempotencyKey.user_id, IdempotencyKey.key).in_(expired)))
