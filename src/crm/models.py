"""Every table model, imported in one place so Alembic and the mappers see them all."""

from crm.contacts.models import Contact
from crm.customers.aggregates import CustomerSegmentCount
from crm.customers.models import Customer
from crm.db.models import Base
from crm.erasure.models import ErasedId
from crm.events.models import Event, EventSequence
from crm.history.models import HistoryEntry
from crm.idempotency.models import IdempotencyKey
from crm.interactions.aggregates import (
    InteractionDailyCount,
    InteractionDayCount,
    InteractionMonthUserCount,
    InteractionUserCount,
)
from crm.interactions.models import Interaction, InteractionWord
from crm.orders.projection.models import CustomerOrderFigures, OrderProjection
from crm.trash.models import TrashedRow
from crm.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

__all__ = [
    "Base",
    "Contact",
    "Customer",
    "CustomerOrderFigures",
    "CustomerSegmentCount",
    "ErasedId",
    "Event",
    "EventSequence",
    "HistoryEntry",
    "IdempotencyKey",
    "Interaction",
    "InteractionDailyCount",
    "InteractionDayCount",
    "InteractionMonthUserCount",
    "InteractionUserCount",
    "InteractionWord",
    "OrderProjection",
    "TrashedRow",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
]
