"""`/api/webhooks`: subscriptions and their deliveries (admins), each endpoint declared once."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field
from starlette.responses import Response

from crm.api import Answer, Call, Routes
from crm.common.openapi import ERRORS_READ, ERRORS_WRITE
from crm.common.pagination import MAX_LIMIT
from crm.common.responses import json_response
from crm.webhooks import service
from crm.webhooks.dispatcher import Dispatcher
from crm.webhooks.schemas import (
    DeliveryOut,
    DeliveryPage,
    DeliveryStatus,
    WebhookCreate,
    WebhookList,
    WebhookOut,
    WebhookUpdate,
    WebhookWithSecret,
)

routes = Routes("/api/webhooks", tag="webhooks")


class WebhookPath(BaseModel):
    webhook_id: UUID


class DeliveryPath(WebhookPath):
    delivery_id: UUID


class DeliveriesQuery(WebhookPath):
    status: DeliveryStatus | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="deliveries per page")] = 50
    cursor: Annotated[
        str | None,
        Field(max_length=2048, pattern=r"^[A-Za-z0-9_-]+$", description="`pagination.nextCursor` of the previous page"),
    ] = None


def _wake(call: Call[Any, Any]) -> None:
    dispatcher: Dispatcher | None = getattr(call.state, "webhook_dispatcher", None)
    if dispatcher is not None:
        dispatcher.wake()


@routes.post(
    "",
    summary="Subscribe a URL to events; the answer holds its signing secret, shown only here",
    permission=("webhooks", "create"),
    body=WebhookCreate,
    answer=Answer(201, WebhookWithSecret, headers={"Location": "the new subscription"}),
    errors=ERRORS_WRITE,
    database="transaction",
)
async def create_webhook(call: Call[BaseModel, WebhookCreate]) -> Response:
    created = await service.create(call.session, call.body, call.settings)
    return json_response(created.model_dump_json(), status=201, headers={"Location": f"/api/webhooks/{created.id}"})


@routes.get(
    "",
    summary="Every webhook subscription",
    permission=("webhooks", "read"),
    answer=Answer(model=WebhookList),
    errors=ERRORS_READ,
    database="transaction",
)
async def list_webhooks(call: Call[BaseModel, None]) -> Response:
    return json_response(WebhookList(webhooks=await service.list_all(call.session)).model_dump_json())


@routes.get(
    "/{webhook_id}",
    summary="A webhook subscription",
    permission=("webhooks", "read"),
    params=WebhookPath,
    answer=Answer(model=WebhookOut),
    errors=ERRORS_READ,
    database="transaction",
)
async def get_webhook(call: Call[WebhookPath, None]) -> Response:
    return json_response((await service.get(call.session, call.params.webhook_id)).model_dump_json())


@routes.endpoint(
    "PATCH",
    "/{webhook_id}",
    summary="Change a subscription's URL, events or description, or disable or resume it",
    permission=("webhooks", "update"),
    params=WebhookPath,
    body=WebhookUpdate,
    answer=Answer(model=WebhookOut),
    errors=ERRORS_WRITE,
    database="transaction",
)
async def update_webhook(call: Call[WebhookPath, WebhookUpdate]) -> Response:
    updated = await service.update(call.session, call.params.webhook_id, call.body, call.settings, call.user.user_id)
    return json_response(updated.model_dump_json())


@routes.delete(
    "/{webhook_id}",
    summary="Delete a subscription and its deliveries",
    permission=("webhooks", "delete"),
    params=WebhookPath,
    answer=Answer(204, description="Deleted"),
    errors=ERRORS_WRITE,
    database="transaction",
)
async def delete_webhook(call: Call[WebhookPath, None]) -> Response:
    await service.delete(call.session, call.params.webhook_id)
    return Response(status_code=204)


@routes.post(
    "/{webhook_id}/rotate-secret",
    summary="A new signing secret (shown only here); the old one keeps signing beside it for 24 h",
    permission=("webhooks", "update"),
    params=WebhookPath,
    answer=Answer(model=WebhookWithSecret),
    errors=ERRORS_WRITE,
    database="transaction",
)
async def rotate_secret(call: Call[WebhookPath, None]) -> Response:
    rotated = await service.rotate_secret(call.session, call.params.webhook_id, call.settings)
    return json_response(rotated.model_dump_json())


# The next two commit before they wake the dispatcher (database=None, a session of their own),
# so that it finds the delivery they made due.


@routes.post(
    "/{webhook_id}/test",
    summary="Send a crm.webhook.test event now",
    permission=("webhooks", "update"),
    params=WebhookPath,
    answer=Answer(202, DeliveryOut, description="The test delivery, about to be sent"),
    errors=ERRORS_WRITE,
)
async def send_test(call: Call[WebhookPath, None]) -> Response:
    async with call.sessionmaker() as session, session.begin():
        delivery = await service.send_test(session, call.params.webhook_id)
    _wake(call)
    return json_response(delivery.model_dump_json(), status=202)


@routes.get(
    "/{webhook_id}/deliveries",
    summary="A subscription's deliveries with their attempts, newest first",
    permission=("webhooks", "read"),
    params=DeliveriesQuery,
    answer=Answer(model=DeliveryPage),
    errors=ERRORS_READ,
    database="transaction",
)
async def list_deliveries(call: Call[DeliveriesQuery, None]) -> Response:
    query = call.params
    page = await service.deliveries(call.session, query.webhook_id, query.status, query.cursor, query.limit)
    return json_response(page.model_dump_json(by_alias=True))


@routes.post(
    "/{webhook_id}/deliveries/{delivery_id}/retry",
    summary="Send a delivery again now (with the whole retry schedule ahead)",
    permission=("webhooks", "update"),
    params=DeliveryPath,
    answer=Answer(202, DeliveryOut, description="The delivery, about to be sent"),
    errors=ERRORS_WRITE,
)
async def retry_delivery(call: Call[DeliveryPath, None]) -> Response:
    async with call.sessionmaker() as session, session.begin():
        delivery = await service.retry(session, call.params.webhook_id, call.params.delivery_id)
    _wake(call)
    return json_response(delivery.model_dump_json(), status=202)
