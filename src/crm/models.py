"""Every table model, imported in one place so Alembic and the mappers see them all."""

from crm.contacts.models import Contact
from crm.customers.aggregates import CustomerSegmentCount
from crm.customers.models import Customer
from crm.db.models import Base
from crm.events.models import Event, EventSequence
from crm.history.models import HistoryEntry
from crm.idempotency.models import IdempotencyKey
from crm.interactions.aggregates import InteractionDailyCount, InteractionDayCount, InteractionUserCount
from crm.interactions.models import Interaction
from crm.orders.projection.models import CustomerOrderFigures, OrderProjection
from crm.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

__all__ = [
    "Base",
    "Contact",
    "Customer",
    "CustomerOrderFigures",
    "CustomerSegmentCount",
    "Event",
    "EventSequence",
    "HistoryEntry",
    "IdempotencyKey",
    "Interaction",
    "InteractionDailyCount",
    "InteractionDayCount",
    "InteractionUserCount",
    "OrderProjection",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
]
