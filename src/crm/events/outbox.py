"""Writing the outbox: each history entry and its event, in one statement of the change's transaction.

`crm.history.service.Changes.write` hands its entries here, and one statement per customer
inserts the entries and their events together, so an event exists exactly when its entry does
(a rolled-back request leaves neither) at the cost of one round trip per write. The event's id
is the entry's id, so erasure finds both by the customer and a consumer can ask the history
for the entry an event announced.

`sequence` numbers one customer's events 1, 2, 3... in commit order with no gaps. The next
numbers come from the customer's `event_sequences` row, bumped by an upsert whose row lock
lasts until the commit: a second writer of the same customer waits there, so it cannot take
a number before the first has committed (or rolled back, taking its numbers with it).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Integer, String, Uuid

SOURCE = "crm-service"

# One customer's entries, given as one JSON array (one parameter however many there are); the
# event's `data` is {<entity>: record, changes, actor, request_id}.
_WRITE = text(
    """
    WITH given AS (
        SELECT * FROM jsonb_to_recordset(:entries) AS e(
            ord int, id uuid, entity text, entity_id uuid, action text, version int, changes jsonb, record jsonb)
    ), entries AS (
        INSERT INTO history
            (id, entity, entity_id, customer_id, action, actor_user_id, actor_role, request_id, version, changes)
        SELECT id, entity, entity_id, :customer_id, action, :user_id, :role, :request_id, version, changes
        FROM given ORDER BY ord
    ), numbers AS (
        INSERT INTO event_sequences AS s (customer_id, last) VALUES (:customer_id, :count)
        ON CONFLICT (customer_id) DO UPDATE SET last = s.last + excluded.last
        RETURNING s.last
    )
    INSERT INTO events (id, type, customer_id, subject, sequence, data)
    SELECT given.id, 'crm.' || given.entity || '.' || given.action, :customer_id, given.entity_id,
           numbers.last - :count + given.ord,
           jsonb_build_object(
               given.entity, given.record,
               -- An erasure's event says who was erased and nothing of what they held.
               'changes', CASE WHEN given.action = 'erased' THEN '{}'::jsonb ELSE given.changes END,
               'actor', jsonb_build_object('user_id', CAST(:user_id AS text), 'role', CAST(:role AS text)),
               'request_id', CAST(:request_id AS text))
    FROM given, numbers ORDER BY given.ord
    """
).bindparams(
    bindparam("entries", type_=JSONB),
    bindparam("customer_id", type_=Uuid),
    bindparam("count", type_=Integer),
    bindparam("user_id", type_=Uuid),
    bindparam("role", type_=String),
    bindparam("request_id", type_=String),
)

# The entries and events of the contacts and interactions a customer's delete took with it, in
# one statement after the move, from their trash rows (crm.trash: the record as it was, its
# version already one step on, as the `deleted` entry gives it). After, not before: the move's
# deletes take the interaction roll-ups' month rows, and every other writer takes those before
# the customer's event_sequences row (its entries come after its last flush); taking that row
# first here would let a concurrent interaction write and this delete wait on each other.
_CHILDREN_DELETED = text(
    """
    WITH gone AS (
        SELECT t.entity, t.id, CAST(t.record->>'version' AS int) AS version, t.record
        FROM trash t
        WHERE t.deletion_id = :deletion_id AND t.entity IN ('contact', 'interaction')
    ), entries AS (
        INSERT INTO history (entity, entity_id, customer_id, action, actor_user_id, actor_role, request_id, version)
        SELECT entity, id, :customer_id, 'deleted', :user_id, :role, :request_id, version FROM gone
        RETURNING id, entity, entity_id
    ), numbered AS (
        SELECT entries.id, entries.entity, entries.entity_id, gone.record,
               row_number() OVER (ORDER BY entries.entity, entries.entity_id) AS ord,
               count(*) OVER () AS n
        FROM entries JOIN gone ON gone.id = entries.entity_id
    ), numbers AS (
        INSERT INTO event_sequences AS s (customer_id, last)
        SELECT :customer_id, count(*) FROM gone HAVING count(*) > 0
        ON CONFLICT (customer_id) DO UPDATE SET last = s.last + excluded.last
        RETURNING s.last
    )
    INSERT INTO events (id, type, customer_id, subject, sequence, data)
    SELECT numbered.id, 'crm.' || numbered.entity || '.deleted', :customer_id, numbered.entity_id,
           numbers.last - numbered.n + numbered.ord,
           jsonb_build_object(
               numbered.entity, numbered.record, 'changes', '{}'::jsonb,
               'actor', jsonb_build_object('user_id', CAST(:user_id AS text), 'role', CAST(:role AS text)),
               'request_id', CAST(:request_id AS text))
    FROM numbered, numbers
    """
).bindparams(
    bindparam("customer_id", type_=Uuid),
    bindparam("deletion_id", type_=Uuid),
    bindparam("user_id", type_=Uuid),
    bindparam("role", type_=String),
    bindparam("request_id", type_=String),
)


async def write(
    session: AsyncSession,
    entries: Iterable[Mapping[str, Any]],
    user_id: UUID | None,
    role: str | None,
    request_id: str | None,
) -> None:
    """Insert the history entries and an event for each, in the given order (one statement per customer).

    Each entry holds the history row's values and `record`, the row after the change.
    """
    by_customer: dict[UUID, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        given = by_customer[entry["customer_id"]]
        given.append(
            {
                "ord": len(given) + 1,
                "id": str(entry["id"]),
                "entity": entry["entity"],
                "entity_id": str(entry["entity_id"]),
                "action": entry["action"],
                "version": entry["version"],
                "changes": entry["changes"],
                "record": entry["record"],
            }
        )
    for customer_id, given in by_customer.items():
        await session.execute(
            _WRITE,
            {
                "entries": given,
                "customer_id": customer_id,
                "count": len(given),
                "user_id": user_id,
                "role": role,
                "request_id": request_id,
            },
        )


async def children_deleted(
    session: AsyncSession,
    customer_id: UUID,
    deletion_id: UUID,
    user_id: UUID | None,
    role: str | None,
    request_id: str | None,
) -> None:
    """The `deleted` history entries and events of the contacts and interactions that the deletion
    `deletion_id` moved to the trash with their customer (call right after the move)."""
    values = {"customer_id": customer_id, "deletion_id": deletion_id, "user_id": user_id, "role": role}
    await session.execute(_CHILDREN_DELETED, {**values, "request_id": request_id})


# Every kept event of the customer, its person's values nulled: the record's fields and each
# change's old/new, but the record ids (`id` and the references to other records: customer,
# contact, owner and author; not `tax_id`, which is the person's), the actor (a member of staff)
# and the request id stay, and so do every key and field name, so a consumer still reads the
# same shapes.
_REDACT = text(
    r"""
    UPDATE events e SET data = (
        SELECT jsonb_object_agg(
            d.key,
            CASE
                WHEN d.key IN ('actor', 'request_id') THEN d.value
                WHEN d.key = 'changes' AND jsonb_typeof(d.value) = 'object' THEN COALESCE(
                    (SELECT jsonb_object_agg(
                        c.key,
                        CASE WHEN c.key IN ('id', 'customer_id', 'contact_id', 'owner_id', 'user_id')
                             THEN c.value
                             ELSE jsonb_build_object('old', NULL, 'new', NULL) END)
                     FROM jsonb_each(d.value) AS c), '{}'::jsonb)
                WHEN jsonb_typeof(d.value) = 'object' THEN COALESCE(
                    (SELECT jsonb_object_agg(
                        f.key,
                        CASE WHEN f.key IN ('id', 'customer_id', 'contact_id', 'owner_id', 'user_id')
                             THEN f.value ELSE 'null'::jsonb END)
                     FROM jsonb_each(d.value) AS f), '{}'::jsonb)
                ELSE d.value
            END)
        FROM jsonb_each(e.data) AS d
    )
    WHERE e.customer_id = :customer_id
    """
).bindparams(bindparam("customer_id", type_=Uuid))


async def redact(session: AsyncSession, customer_id: UUID) -> int:
    """Null every personal value in the kept events of an erased customer; how many events.

    For the erasure, in its transaction. Published events keep their place in the feed (with
    the values gone); unpublished ones are published without them. Copies the broker already
    delivered are the consumers' to handle: the `crm.customer.erased` event tells them.
    """
    result = await session.execute(_REDACT, {"customer_id": customer_id})
    return int(result.rowcount)  # type: ignore[attr-defined]


def envelope(row: Mapping[str, Any]) -> dict[str, Any]:
    """The structured-mode CloudEvent 1.0 of an `events` row (as the relay, the feed and webhooks send it)."""
    data = row["data"]
    return {
        "specversion": "1.0",
        "id": str(row["id"]),
        "source": SOURCE,
        "type": row["type"],
        "subject": str(row["subject"]),
        "time": row["time"].isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "customerid": str(row["customer_id"]),
        "sequence": str(row["sequence"]),
        "data": json.loads(data) if isinstance(data, str) else data,
    }
