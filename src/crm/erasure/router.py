"""`POST /api/customers/{customer_id}/erase`: erasure on request, admins only, declared once."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel
from starlette.responses import Response

from crm.api import Answer, Call, Routes
from crm.common.openapi import ERRORS_WRITE, problem_doc
from crm.common.params import IdempotencyKey
from crm.erasure import service
from crm.erasure.schemas import ErasureReceipt
from crm.history import service as history
from crm.idempotency import service as idempotency

routes = Routes("", tag="erasure")


class ErasePath(BaseModel):
    customer_id: UUID
    idempotency_key: IdempotencyKey = None


@routes.post(
    "/api/customers/{customer_id}/erase",
    summary="Erase a customer (live or in the trash) with every trace of it (admins)",
    description=(
        "Removes the customer, its contacts and interactions, redacts every history entry about them "
        "(field names stay, values become null) and answers a receipt. Afterwards every endpoint answers "
        "410 (`urn:crm:problem:erased`) for their ids. A retry with the same `Idempotency-Key` replays the receipt."
    ),
    permission=("customers", "erase"),
    params=ErasePath,
    answer=Answer(model=ErasureReceipt),
    errors={**ERRORS_WRITE, 410: problem_doc("Already erased (`urn:crm:problem:erased`)")},
    database="transaction",
)
async def erase_customer(call: Call[ErasePath, None]) -> Response:
    params = call.params
    actor = history.Actor.of(call.user)

    async def write() -> idempotency.Answer:
        receipt = await service.erase_customer(call.session, params.customer_id, actor)
        return idempotency.Answer(200, receipt.model_dump_json(), {})

    print_ = idempotency.fingerprint("POST", call.path, None)
    return await idempotency.run_once(call.session, call.user.user_id, params.idempotency_key, print_, write)
