"""Writing history: one entry per changed record, in the transaction of the change.

The services call this after their last flush, while they still hold the row locks of the
records they changed (see each service's module doc): an entry is written only for a change
that was made, and rolls back with it. Old and new values are the ones the service held in
hand before and after the change, so they are exact: what the next reader of the row sees.
Each entry is also an event in the outbox (crm.events.outbox), written by the same `write`.

Use: `changes = history.Changes(actor)`; `changes.watch(record, ...)` before modifying
existing records; `changes.created(record)` / `changes.deleted(record)` for the others
(`changes.restored(entity, row)` for a row a restore inserted, `changes.erased(...)` for an
erasure); `await changes.write(session)` after the last flush.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import column, func, inspect, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from crm.auth.guard import Grant
from crm.common.pagination import Cursor, SortOrder
from crm.contacts.models import Contact
from crm.customers.models import Customer
from crm.db.models import Base
from crm.errors import Erased, NotFound, ValidationFailed
from crm.events import outbox
from crm.history import queries
from crm.history.models import HistoryAction, HistoryEntity, HistoryEntry
from crm.history.schemas import HistoryPage, at_text
from crm.interactions.models import Interaction
from crm.log import request_id_var

# The entry itself says these: entity_id, version and at.
_NOT_FIELDS = frozenset({"id", "version", "created_at", "updated_at"})

_ENTITIES: dict[type[Base], HistoryEntity] = {
    Customer: HistoryEntity.customer,
    Contact: HistoryEntity.contact,
    Interaction: HistoryEntity.interaction,
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: the caller's user id and role as the token said them."""

    user_id: UUID | None
    role: str | None

    @classmethod
    def of(cls, grant: Grant) -> Actor:
        return cls(grant.user_id, grant.principal.role)


def _plain(value: Any) -> Any:
    """A column value as JSON: UUIDs and moments as strings, enums as their values."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def fields_of(record: Base) -> dict[str, Any]:
    """The record's field values as history compares them (JSON-ready)."""
    return {
        attr.key: _plain(getattr(record, attr.key))
        for attr in inspect(type(record)).column_attrs
        if attr.key not in _NOT_FIELDS
    }


def record_of(record: Base) -> dict[str, Any]:
    """Every column of the record (JSON-ready): the record an event carries."""
    return {attr.key: _plain(getattr(record, attr.key)) for attr in inspect(type(record)).column_attrs}


def _customer_of(record: Base) -> UUID:
    customer_id: UUID = record.id if isinstance(record, Customer) else record.customer_id  # type: ignore[attr-defined]
    return customer_id


@dataclass(frozen=True, slots=True)
class _Entry:
    """An entry of a change made in SQL (a restore, a re-link, an erasure): no ORM record to
    read it from. `record` is the row after the change (None for an erasure), for the event
    that will announce the entry."""

    entity: HistoryEntity
    action: HistoryAction
    entity_id: UUID
    customer_id: UUID
    version: int | None
    changes: dict[str, Any]
    record: dict[str, Any] | None = None


@dataclass(slots=True)
class Changes:
    """The records one request changes, and the history entries that follow from them."""

    actor: Actor
    _watched: dict[int, tuple[Base, dict[str, Any]]] = field(default_factory=dict)
    _created: list[Base] = field(default_factory=list)
    _deleted: list[tuple[Base, int]] = field(default_factory=list)
    _other: list[_Entry] = field(default_factory=list)

    def watch(self, *records: Base) -> None:
        """Remember the records' values before this request changes any of them."""
        for record in records:
            self._watched.setdefault(id(record), (record, fields_of(record)))

    def created(self, record: Base) -> None:
        self._created.append(record)

    def deleted(self, record: Base) -> None:
        """Call before the delete is flushed: the entry's version follows the last one the record had."""
        self._watched.pop(id(record), None)
        self._deleted.append((record, record.version))  # type: ignore[attr-defined]

    def restored(self, entity: HistoryEntity, row: Mapping[str, Any]) -> None:
        """A record a restore put back (its row as inserted): every field set, with `old: null`, as
        for `created`, so a reader who saw it deleted learns all it holds again."""
        values = {name: {"old": None, "new": _plain(v)} for name, v in row.items() if name not in _NOT_FIELDS}
        customer_id = row["id"] if entity is HistoryEntity.customer else row["customer_id"]
        changes = {name: change for name, change in values.items() if change["new"] is not None}
        record = {name: _plain(v) for name, v in row.items()}
        self._other.append(
            _Entry(entity, HistoryAction.restored, row["id"], customer_id, row["version"], changes, record)
        )

    def contact_changed(self, interaction: Mapping[str, Any], old: UUID | None, new: UUID | None) -> None:
        """An interaction whose contact a contact's delete or restore changed (in SQL, so no ORM
        object to watch): `interaction` is its row after the change."""
        changes = {"contact_id": {"old": _plain(old), "new": _plain(new)}}
        record = {name: _plain(v) for name, v in interaction.items()}
        self._other.append(
            _Entry(
                HistoryEntity.interaction,
                HistoryAction.updated,
                interaction["id"],
                interaction["customer_id"],
                interaction["version"],
                changes,
                record,
            )
        )

    def erased(self, customer_id: UUID, counts: Mapping[str, tuple[int | None, int]]) -> None:
        """The one entry of an erasure: who erased (the actor) and how many records, as
        `{name: {"old": before, "new": after}}` (no values of the person: they are gone)."""
        changes = {name: {"old": old, "new": new} for name, (old, new) in counts.items()}
        # Its event carries the customer's id alone (crm.events.outbox leaves its changes out).
        self._other.append(
            _Entry(
                HistoryEntity.customer,
                HistoryAction.erased,
                customer_id,
                customer_id,
                None,
                changes,
                {"id": str(customer_id)},
            )
        )

    def changed(self) -> bool:
        """Whether any entry would be written (so far)."""
        return bool(self.entries())

    def entries(self) -> list[dict[str, Any]]:
        """The entries' values (and `record`, the row after the change, for the event), in the order
        the changes were registered: creations, updates, deletes."""

        def entry(record: Base, action: HistoryAction, version: int, changes: dict[str, Any]) -> dict[str, Any]:
            return {
                "id": uuid.uuid4(),
                "entity": _ENTITIES[type(record)].value,
                "entity_id": record.id,  # type: ignore[attr-defined]
                "customer_id": _customer_of(record),
                "action": action.value,
                "version": version,
                "changes": changes,
                "record": record_of(record),
            }

        entries = []
        for record in self._created:
            values = {name: {"old": None, "new": v} for name, v in fields_of(record).items() if v is not None}
            entries.append(entry(record, HistoryAction.created, record.version, values))  # type: ignore[attr-defined]
        for record, before in self._watched.values():
            after = fields_of(record)
            changed = {n: {"old": before[n], "new": v} for n, v in after.items() if before.get(n) != v}
            if changed:
                entries.append(entry(record, HistoryAction.updated, record.version, changed))  # type: ignore[attr-defined]
        for record, version in self._deleted:
            # The version a soft delete (the trash) will move the row to, so a record's entries
            # stay numbered one step apart.
            entries.append(entry(record, HistoryAction.deleted, version + 1, {}))
        entries.extend(
            {
                "id": uuid.uuid4(),
                "entity": other.entity.value,
                "entity_id": other.entity_id,
                "customer_id": other.customer_id,
                "action": other.action.value,
                "version": other.version,
                "changes": other.changes,
                "record": other.record,
            }
            for other in self._other
        )
        return entries

    async def write(self, session: AsyncSession) -> int:
        """Insert the entries and their events; how many entries. Call after the request's last flush."""
        entries = self.entries()
        if entries:
            await outbox.write(session, entries, self.actor.user_id, self.actor.role, request_id_var.get())
        return len(entries)

    async def children_deleted(self, session: AsyncSession, customer_id: UUID, deletion_id: UUID) -> None:
        """A `deleted` entry and event for each contact and interaction a customer's delete took
        with it: one statement over their trash rows, right after the move (crm.events.outbox
        says why after)."""
        await outbox.children_deleted(
            session, customer_id, deletion_id, self.actor.user_id, self.actor.role, request_id_var.get()
        )


async def redact_customer(session: AsyncSession, customer_id: UUID) -> int:
    """Erasure's one exception to append-only: every entry about the customer (its own, its
    contacts' and interactions') keeps its structure and field names, every value becomes null.
    How many entries."""
    result = await session.execute(
        update(HistoryEntry)
        .where(HistoryEntry.customer_id == customer_id)
        .values(changes=_REDACTED)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# {field: {"old": null, "new": null}} for each field the entry named.
_REDACTED = func.coalesce(
    select(func.jsonb_object_agg(column("key"), literal({"old": None, "new": None}, JSONB)))
    .select_from(func.jsonb_object_keys(HistoryEntry.changes).alias("key"))
    .scalar_subquery(),
    literal({}, JSONB),
)


# --- reading ---

# Every field name an entry's `changes` can hold, for the `field` filter.
FIELDS = frozenset(
    attr.key for model in _ENTITIES for attr in inspect(model).column_attrs if attr.key not in _NOT_FIELDS
)


def _entry(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at": at_text(row["at"]),
        "entity": row["entity"],
        "entity_id": row["entity_id"],
        "customer_id": row["customer_id"],
        "action": row["action"],
        "actor": {"user_id": row["actor_user_id"], "role": row["actor_role"]},
        "request_id": row["request_id"],
        "version": row["version"],
        "changes": json.loads(row["changes"]),
    }


async def history_page(
    connection: asyncpg.Connection, filters: queries.HistoryFilters, cursor: Cursor | None, limit: int
) -> HistoryPage:
    """A page of entries, newest first; with `filters.customer_id`, that customer's (404 if it never existed)."""
    scope = f"history:{filters.customer_id}" if filters.customer_id is not None else "history"
    if filters.field is not None and filters.field not in FIELDS:
        raise ValidationFailed.field("field", f"must be one of: {', '.join(sorted(FIELDS))}")
    keyset = None if cursor is None else queries.Keyset(*cursor.newest_first(scope))
    rows = await queries.page(connection, filters, keyset, limit + 1)  # one more: is there a next page?
    if filters.customer_id is not None:
        if rows[0]["customer_erased"] if rows else await queries.customer_erased(connection, filters.customer_id):
            raise Erased(f"customer {filters.customer_id} was erased")
        if not rows and not await queries.customer_known(connection, filters.customer_id):
            raise NotFound(f"customer {filters.customer_id} not found")
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = Cursor(scope, SortOrder.DESC.value, last["at"].isoformat(), str(last["id"])).encode()
    return HistoryPage.model_validate(
        {
            "history": [_entry(row) for row in rows[:limit]],
            "pagination": {"limit": limit, "has_next": next_cursor is not None, "next_cursor": next_cursor},
        }
    )
