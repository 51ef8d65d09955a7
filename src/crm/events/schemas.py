"""The events' wire format: CloudEvents 1.0 envelopes, the feed's page, the relay's status."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventEnvelope(BaseModel):
    """A CloudEvent 1.0 in structured mode, as the broker, the feed and webhooks carry it."""

    specversion: str = Field(description='"1.0"')
    id: str = Field(description="the event's id (the history entry's): drop a repeat by it")
    source: str = Field(description='"crm-service"')
    type: str = Field(description="crm.<customer|contact|interaction>.<created|updated|deleted|restored|erased>")
    subject: str = Field(description="the id of the record that changed")
    time: str = Field(description="when the change was written, UTC")
    datacontenttype: str = Field(description='"application/json"')
    customerid: str = Field(description="the customer the record belongs (belonged) to")
    sequence: str = Field(
        description="the customer's event number, 1, 2, 3... in commit order with no gaps (a decimal string)"
    )
    data: dict[str, Any] = Field(
        description="{<entity>: the record after the change, changes: as in history, actor, request_id}"
    )


class FeedPagination(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    limit: int
    has_next: bool = Field(alias="hasNext", description="more events are published after this page now")
    next_cursor: str | None = Field(
        alias="nextCursor",
        description=(
            "pass as `after` to continue after this page (also when `hasNext` is false: poll with it later); "
            "null only when no event was ever read"
        ),
    )


class EventsPage(BaseModel):
    events: list[EventEnvelope]
    pagination: FeedPagination


class RelayStatus(BaseModel):
    backlog: int = Field(description="events written but not yet published")
    oldest_unpublished_at: str | None = Field(description="when the oldest waiting event was written (null: none)")
    oldest_unpublished_age_seconds: float | None = Field(description="how long it has waited (null: none waits)")
    last_published_at: str | None = Field(description="when an event was last published")
    leader: bool = Field(description="some instance's relay holds the leadership (publishes) now")
    broker: str = Field(description='"rabbitmq" when this instance publishes to EVENTS_AMQP_URL, else "none"')
    exchange: str | None = Field(description="the exchange events are published to (null without a broker)")
    retention_days: float = Field(description="published events are purged after this many days")
