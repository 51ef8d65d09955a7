"""The trash: what the caller could restore, restores, and the purge.

Locks, in the order every writer takes them (so they queue instead of deadlocking): the live
customer's row (as contact writers, or KEY SHARE as an interaction's foreign key does), then the
trash row. A restore and a purge meet on the trash row: the restore waits for it (FOR UPDATE),
the purge skips rows a restore holds (SKIP LOCKED). Whichever takes the row first wins; the
other finds nothing (the restore then answers 404, the purge leaves the row to the next run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import asyncpg
import structlog
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from crm.auth.guard import Grant
from crm.auth.permissions import Resource, Scope, scope_for
from crm.common import db_errors
from crm.common.pagination import Cursor, SortOrder
from crm.contacts import service as contacts
from crm.contacts.models import Contact
from crm.customers.models import Customer
from crm.errors import Conflict, FieldError, Forbidden, NotFound
from crm.history import service as history
from crm.history.models import HistoryEntity
from crm.interactions.models import Interaction
from crm.trash import queries
from crm.trash.models import TrashedRow
from crm.trash.schemas import TrashEntity, TrashPage

log = structlog.get_logger("crm.trash")

_RESOURCES: dict[TrashEntity, Resource] = {
    TrashEntity.customer: "customers",
    TrashEntity.contact: "contacts",
    TrashEntity.interaction: "interactions",
}
_EMAIL_INDEX = "uq_customers_email_lower"


def visible(role: str, entity: TrashEntity | None) -> queries.Shape:
    """What a role could restore, from its "delete" scopes (the permission table): whole
    entities, or ("own") the interactions the caller authored."""
    pairs = []
    for kind, resource in _RESOURCES.items():
        scope = scope_for(role, resource, "delete")
        if scope is not None and (entity is None or entity is kind):
            pairs.append((kind.value, scope is Scope.own))
    if entity is None and len(pairs) == len(_RESOURCES) and not any(own for _, own in pairs):
        return None  # everything: the plain newest-first walk
    return tuple(pairs)


async def list_trash(
    connection: asyncpg.Connection,
    grant: Grant,
    entity: TrashEntity | None,
    cursor: Cursor | None,
    limit: int,
    days: int,
) -> TrashPage:
    """A page of what the caller could restore, newest first."""
    scope = f"trash:{entity.value}" if entity is not None else "trash"
    keyset = None if cursor is None else queries.Keyset(*cursor.newest_first(scope))
    shape = visible(grant.principal.role, entity)
    rows = await queries.page(connection, shape, grant.user_id, keyset, limit + 1)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = Cursor(scope, SortOrder.DESC.value, last["deleted_at"].isoformat(), str(last["id"])).encode()
    keep = timedelta(days=days)
    return TrashPage.model_validate(
        {
            "trash": [{**dict(row), "purge_after": row["deleted_at"] + keep} for row in rows[:limit]],
            "pagination": {"limit": limit, "has_next": next_cursor is not None, "next_cursor": next_cursor},
        }
    )


# --- restore ---------------------------------------------------------------------------------


async def _missing(
    session: AsyncSession, entity: TrashEntity, table: type[Customer | Contact | Interaction], record_id: UUID
) -> Exception:
    """Why a record is not in the trash: it is live (409), or never was / was purged (404;
    the error handler answers 410 for an erased id)."""
    if await queries.is_live(session, table, record_id):
        return Conflict(
            f"{entity.value} {record_id} is not in the trash",
            errors=[FieldError("id", f"is a live {entity.value}; only a deleted one can be restored")],
        )
    return NotFound(f"{entity.value} {record_id} not found")


async def _customer_not_live(session: AsyncSession, customer_id: UUID) -> Conflict:
    if await queries.in_trash(session, TrashEntity.customer.value, customer_id):
        reason = "is in the trash: restore the customer first"
    else:
        reason = "no longer exists"
    return Conflict(f"customer_id: the customer {reason}", errors=[FieldError("customer_id", reason)])


def _email_taken() -> Conflict:
    return Conflict(
        "a live customer has this customer's email now",
        errors=[FieldError("email", "a live customer has this email now; change theirs or delete it first")],
    )


@dataclass(slots=True)
class RestoredCustomer:
    customer: Customer
    contacts: list[Contact]


async def restore_customer(session: AsyncSession, customer_id: UUID, actor: history.Actor) -> RestoredCustomer:
    """The customer with exactly what its delete took (not what was deleted on its own before)."""
    row = await queries.locked(session, TrashEntity.customer.value, customer_id)
    if row is None:
        raise await _missing(session, TrashEntity.customer, Customer, customer_id)
    email = row.record.get("email")
    if email is not None:
        taken = await session.scalar(select(Customer.id).where(func.lower(Customer.email) == email.lower()))
        if taken is not None:
            raise _email_taken()
    try:
        customer_row, contact_rows, interaction_rows = await queries.restore_customer(
            session, customer_id, row.deletion_id
        )
    except IntegrityError as exc:  # a customer with the email created since the check above
        if db_errors.constraint_name(exc) == _EMAIL_INDEX:
            raise _email_taken() from exc
        raise
    changes = history.Changes(actor)
    changes.restored(HistoryEntity.customer, customer_row)
    for contact in contact_rows:
        changes.restored(HistoryEntity.contact, contact)
    for interaction in interaction_rows:
        changes.restored(HistoryEntity.interaction, interaction)
    await changes.write(session)
    customer = await session.scalar(select(Customer).where(Customer.id == customer_id))
    assert customer is not None
    return RestoredCustomer(customer, await contacts.contacts_of(session, customer_id))


async def _peek(session: AsyncSession, entity: TrashEntity, record_id: UUID) -> TrashedRow | None:
    return await session.scalar(select(TrashedRow).where(TrashedRow.entity == entity.value, TrashedRow.id == record_id))


async def restore_contact(session: AsyncSession, contact_id: UUID, actor: history.Actor) -> Contact:
    """The contact, primary only if its customer has no primary now; its unlinked interactions re-linked."""
    peeked = await _peek(session, TrashEntity.contact, contact_id)
    if peeked is None:
        raise await _missing(session, TrashEntity.contact, Contact, contact_id)
    # The customer's lock first, as every contact writer takes it (the primary rule needs it).
    if not await queries.lock_customer_row(session, peeked.customer_id, key_share=False):
        raise await _customer_not_live(session, peeked.customer_id)
    row = await queries.locked(session, TrashEntity.contact.value, contact_id)
    if row is None:  # restored or purged while we waited
        raise await _missing(session, TrashEntity.contact, Contact, contact_id)
    restored, relinked = await queries.restore_contact(session, row)
    changes = history.Changes(actor)
    changes.restored(HistoryEntity.contact, restored)
    for interaction in relinked:
        changes.contact_changed(interaction, None, contact_id)
    await changes.write(session)
    contact = await session.scalar(select(Contact).where(Contact.id == contact_id))
    assert contact is not None
    return contact


async def restore_interaction(
    session: AsyncSession, interaction_id: UUID, actor: history.Actor, author_only: UUID | None
) -> Interaction:
    """The interaction; its contact again if that contact is live (else unattributed, and the
    contact's own restore re-links it)."""
    peeked = await _peek(session, TrashEntity.interaction, interaction_id)
    if peeked is None:
        raise await _missing(session, TrashEntity.interaction, Interaction, interaction_id)
    if author_only is not None and peeked.author_id != author_only:
        raise Forbidden("you may only restore interactions you recorded")
    if not await queries.lock_customer_row(session, peeked.customer_id, key_share=True):
        raise await _customer_not_live(session, peeked.customer_id)
    row = await queries.locked(session, TrashEntity.interaction.value, interaction_id)
    if row is None:
        raise await _missing(session, TrashEntity.interaction, Interaction, interaction_id)
    restored = await queries.restore_interaction(session, row)
    changes = history.Changes(actor)
    changes.restored(HistoryEntity.interaction, restored)
    await changes.write(session)
    interaction = await session.scalar(select(Interaction).where(Interaction.id == interaction_id))
    assert interaction is not None
    return interaction


# --- purge -----------------------------------------------------------------------------------

# Any constant works; the same for every instance of this service ("CRM_PURG").
PURGE_LOCK_KEY = 0x43524D5F50555247


@dataclass(frozen=True, slots=True)
class Purged:
    deletions: int
    records: int
    ran: bool


async def purge(engine: AsyncEngine, days: int, batch: int) -> Purged:
    """Remove every deletion older than `days`, `batch` deletions per short transaction.

    One instance at a time: a session-level advisory lock held on one connection for the run;
    another instance (or `crm purge`) that finds it taken does nothing. History is not touched:
    it outlives what it describes.
    """
    deletions = records = 0
    async with engine.connect() as conn:
        locked = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": PURGE_LOCK_KEY}))
        await conn.commit()
        if not locked:
            return Purged(0, 0, ran=False)
        try:
            while True:
                async with conn.begin():
                    done, rows = await queries.purge_batch(conn, days, batch)
                deletions += done
                records += rows
                if done < batch:
                    break
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PURGE_LOCK_KEY})
            await conn.commit()
    if deletions:
        log.info("trash purged", deletions=deletions, records=records)
    return Purged(deletions, records, ran=True)
