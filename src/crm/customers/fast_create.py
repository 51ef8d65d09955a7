"""The customers' plain create for crm.fastpath: POST /api/customers without contacts.

The body is validated by the same model, the same way FastAPI does (JSON parsed, then the
model validated in Python mode); anything it refuses, nested contacts and an Idempotency-Key
are left to the application (see crm.fastpath).
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from pydantic import ValidationError

from crm.auth.tokens import Principal
from crm.common.concurrency import etag
from crm.customers import service
from crm.customers.schemas import CustomerCreate, CustomerDetail
from crm.fastpath import Answer, PlainCreate


def _body(body: bytes) -> object | None:
    try:
        data = CustomerCreate.model_validate(json.loads(body))
    # Not JSON (or nested too deep to parse), or not a valid customer: the application's 4xx.
    except (ValueError, RecursionError, ValidationError):
        return None
    return None if data.contacts else data


async def _create(connection: asyncpg.Connection, data: Any, principal: Principal) -> Answer:
    row = await service.insert_customer(connection, data, principal.user_id)
    body = CustomerDetail.model_validate({**row, "primary_contact": None, "contacts": []}).model_dump_json(
        by_alias=True
    )
    headers = ((b"location", f"/api/customers/{row['id']}".encode()), (b"etag", etag(row["version"]).encode()))
    return Answer(body.encode(), headers, status=201)


CREATES = (PlainCreate("customers", "/api/customers", _body, _create),)
