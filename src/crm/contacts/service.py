"""Contacts and the primary-contact invariant.

Invariant: a customer with at least one contact has exactly one primary contact.
"At most one" is a partial unique index; "at least one" is kept here. Every write
that touches a customer's contacts first takes the customer's row lock
(FOR NO KEY UPDATE: it serialises contact writers of one customer but does not block
inserts of interactions, which only need a KEY SHARE lock on that row), so two
requests can never both see "no primary" or both promote one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.common import db_errors, tiers
from crm.common.concurrency import Precondition
from crm.contacts import queries
from crm.contacts.models import Contact
from crm.contacts.schemas import ContactCreate, ContactFields, ContactUpdate, NestedContactUpsert
from crm.customers.models import Customer
from crm.errors import FieldError, NotFound, ValidationFailed
from crm.history import service as history
from crm.trash import queries as trash

_PRIMARY_INDEX = "uq_contacts_one_primary_per_customer"


def _primary_conflict() -> ValidationFailed:
    # Reached only if the row lock were bypassed; the index is the last line of defence.
    return ValidationFailed.field("is_primary", "the customer already has a primary contact")


async def lock_customer(session: AsyncSession, customer_id: UUID, *, for_delete: bool = False) -> Customer:
    """The customer, row-locked: FOR NO KEY UPDATE for a change (inserts that merely reference
    it go on), FOR UPDATE for its delete, which every such insert must wait for and then miss:
    the delete moves the children first and the customer last, and upgrading its lock then
    would wait on an insert that waits on a roll-up row the delete already holds."""
    stmt = select(Customer).where(Customer.id == customer_id)
    customer = await session.scalar(stmt.with_for_update(key_share=not for_delete))
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    return customer


async def contacts_of(session: AsyncSession, customer_id: UUID) -> list[Contact]:
    """A customer's contacts, primary first, then newest."""
    return await queries.of_customer(session, customer_id)


async def _flush(session: AsyncSession) -> None:
    await db_errors.flush(session, {_PRIMARY_INDEX: _primary_conflict()})


async def _demote_primary(session: AsyncSession, contacts: Sequence[Contact], keep: Contact | None = None) -> None:
    """Un-mark the current primary (other than `keep`) before a new one is marked.

    Flushed on its own because the partial unique index is checked row by row. Callers run it
    before they change the new primary, so that contact is written once: a new contact is
    inserted already primary (version 1), an updated one moves one version step per request.
    """
    for other in contacts:
        if other is not keep and other.is_primary:
            other.is_primary = False
    await _flush(session)


async def _promote_oldest(session: AsyncSession, customer_id: UUID) -> None:
    oldest = await queries.oldest(session, customer_id)
    if oldest is not None:
        oldest.is_primary = True
        await _flush(session)


def _in_listed_order(now: datetime, index: int) -> datetime:
    """created_at of the `index`-th contact one request creates.

    Every row of a transaction gets the same now(), so contacts created together would tie on
    created_at and "newest first" / "the oldest remaining becomes primary" would fall to their
    random ids. A microsecond per position makes the order the client listed them in their age.
    """
    return now + timedelta(microseconds=index)


def check_nested(entries: Sequence[ContactFields | NestedContactUpsert]) -> int | None:
    """Validate a customer body's `contacts` before anything is written; the marked entry's position.

    Runs ahead of the customer's own write, so a body that is both invalid here and conflicting
    there (a duplicate email) gets the 422 for what the client must fix in the body.
    """
    marked = [i for i, entry in enumerate(entries) if entry.is_primary]
    if len(marked) > 1:
        raise ValidationFailed(
            "at most one contact may be primary",
            errors=[FieldError(f"contacts.{i}.is_primary", "only one contact may be primary") for i in marked],
        )
    errors = [
        FieldError(f"contacts.{i}.{name}", "field required")
        for i, entry in enumerate(entries)
        if isinstance(entry, NestedContactUpsert) and entry.id is None
        for name in ("first_name", "last_name")
        if getattr(entry, name) is None
    ]
    if errors:
        raise ValidationFailed("a new contact needs first_name and last_name", errors=errors)
    return marked[0] if marked else None


def new_contacts_for_new_customer(customer_id: UUID, items: Sequence[ContactFields], now: datetime) -> list[Contact]:
    """Contacts created together with their customer: at most one marked, else the first."""
    marked = check_nested(items)
    primary_index = marked if marked is not None else 0
    return [
        Contact(
            customer_id=customer_id,
            **item.model_dump(exclude={"is_primary"}),
            is_primary=i == primary_index,
            created_at=_in_listed_order(now, i),
            updated_at=now,
        )
        for i, item in enumerate(items)
    ]


async def upsert_nested(
    session: AsyncSession, customer_id: UUID, entries: Sequence[NestedContactUpsert], changes: history.Changes
) -> None:
    """Apply `contacts` of a customer update. The caller holds the customer's row lock."""
    marked = check_nested(entries)
    siblings = await contacts_of(session, customer_id)
    changes.watch(*siblings)
    existing = {c.id: c for c in siblings}
    for i, entry in enumerate(entries):
        if entry.id is None:
            continue
        contact = existing.get(entry.id)
        if contact is None:
            raise ValidationFailed.field(f"contacts.{i}.id", "is not a contact of this customer")
        # Un-marking the primary is fine only when the same request marks its successor.
        if entry.is_primary is False and contact.is_primary and marked is None:
            raise ValidationFailed.field(
                f"contacts.{i}.is_primary", "make another contact primary instead of un-marking this one"
            )

    # Who is primary afterwards: the marked entry; else, if the customer has none yet, the first
    # new contact (or, repairing a customer left without one, the oldest, as a delete would
    # promote); else the current primary stays.
    current = next((c for c in siblings if c.is_primary), None)
    new_positions = [i for i, entry in enumerate(entries) if entry.id is None]
    chosen: Contact | int | None = None  # an existing contact, or the position of a new one
    if marked is not None:
        marked_id = entries[marked].id
        chosen = existing[marked_id] if marked_id is not None else marked
    elif current is None:
        chosen = new_positions[0] if new_positions else (siblings[-1] if siblings else None)
    if chosen is not None and chosen is not current:
        await _demote_primary(session, siblings)

    now = await queries.now(session) if new_positions else None
    for i, entry in enumerate(entries):
        fields = entry.changes()
        fields.pop("id", None)
        fields.pop("is_primary", None)
        if entry.id is not None:
            contact = existing[entry.id]
            for name, value in fields.items():
                setattr(contact, name, value)
        else:
            assert now is not None
            contact = Contact(
                customer_id=customer_id,
                is_primary=i == chosen,
                created_at=_in_listed_order(now, new_positions.index(i)),
                updated_at=now,
                **fields,
            )
            session.add(contact)
            changes.created(contact)  # its entry is made from its values after the flush
    if isinstance(chosen, Contact):
        chosen.is_primary = True
    await _flush(session)


# --- the contacts endpoints ---


async def get_contact(session: AsyncSession, contact_id: UUID) -> Contact:
    contact = await session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id} not found")
    return contact


async def get_with_customer(session: AsyncSession, contact_id: UUID) -> tuple[Contact, Customer]:
    found = await queries.with_customer(session, contact_id)
    if found is None:
        raise NotFound(f"contact {contact_id} not found")
    return found


async def list_for_customer(session: AsyncSession, customer_id: UUID) -> list[Contact]:
    found = await contacts_of(session, customer_id)
    # Only an empty list needs the customer looked up: contacts always have one.
    if not found and not await queries.customer_exists(session, customer_id):
        raise NotFound(f"customer {customer_id} not found")
    return found


async def create_contact(session: AsyncSession, data: ContactCreate, actor: history.Actor) -> Contact:
    await lock_customer(session, data.customer_id)
    siblings = await contacts_of(session, data.customer_id)
    changes = history.Changes(actor)
    changes.watch(*siblings)
    primary = data.is_primary or not siblings  # a customer's first contact is its primary
    if primary:
        await _demote_primary(session, siblings)
    contact = Contact(**data.model_dump(exclude={"is_primary"}), is_primary=primary)
    session.add(contact)
    await _flush(session)
    changes.created(contact)
    await changes.write(session)
    return contact


async def _locked_contact(
    session: AsyncSession, contact_id: UUID, precondition: Precondition | None = None
) -> tuple[Contact, list[Contact]]:
    """The contact and its siblings, with the owning customer's row locked, If-Match checked."""
    customer_id = await queries.customer_of(session, contact_id)
    if customer_id is None:
        raise NotFound(f"contact {contact_id} not found")
    await lock_customer(session, customer_id)
    siblings = await contacts_of(session, customer_id)
    for contact in siblings:
        if contact.id == contact_id:
            if precondition is not None:
                precondition.check(contact.version)
            return contact, siblings
    raise NotFound(f"contact {contact_id} not found")  # deleted between the two reads


async def update_contact(
    session: AsyncSession,
    contact_id: UUID,
    data: ContactUpdate,
    actor: history.Actor,
    precondition: Precondition | None = None,
) -> Contact:
    contact, siblings = await _locked_contact(session, contact_id, precondition)
    made = history.Changes(actor)
    made.watch(*siblings)
    changes = data.changes()
    new_customer = changes.pop("customer_id", None)
    if "customer_id" in data.model_fields_set and new_customer != contact.customer_id:
        raise ValidationFailed.field("customer_id", "cannot change; create a contact under the other customer")
    wants_primary = changes.pop("is_primary", None)
    if wants_primary is False and contact.is_primary:
        raise ValidationFailed.field("is_primary", "make another contact primary instead of un-marking this one")
    if wants_primary and not contact.is_primary:
        await _demote_primary(session, siblings, keep=contact)
        contact.is_primary = True
    for name, value in changes.items():
        setattr(contact, name, value)
    await _flush(session)
    await made.write(session)
    return contact


async def set_primary(
    session: AsyncSession, contact_id: UUID, actor: history.Actor, precondition: Precondition | None = None
) -> Contact:
    contact, siblings = await _locked_contact(session, contact_id, precondition)
    if not contact.is_primary:  # idempotent: the primary stays as it is, version included
        changes = history.Changes(actor)
        changes.watch(*siblings)
        await _demote_primary(session, siblings, keep=contact)
        contact.is_primary = True
        await _flush(session)
        await changes.write(session)
    return contact


async def delete_contact(
    session: AsyncSession, contact_id: UUID, actor: history.Actor, precondition: Precondition | None = None
) -> None:
    contact, siblings = await _locked_contact(session, contact_id, precondition)
    changes = history.Changes(actor)
    changes.watch(*siblings)
    changes.deleted(contact)
    was_primary = contact.is_primary
    # To the trash (crm.trash), which remembers the interactions it leaves unattributed.
    for interaction in await trash.move_contact(session, contact.id, trash.Deletion.new(actor.user_id)):
        changes.contact_changed(interaction, contact.id, None)
    session.expunge(contact)
    if was_primary:
        await _promote_oldest(session, contact.customer_id)
    await changes.write(session)


async def search_contacts(
    session: AsyncSession,
    query: str,
    customer_id: UUID | None,
    limit: int,
    *,
    bounds: tiers.Bounds = tiers.DEFAULT_BOUNDS,
) -> list[tuple[Contact, Customer]]:
    """Each found contact with its customer; exact matches first, then prefix, then
    substring; by name within a tier; typos last.

    Each tier is found by an index, bounded by `limit` (crm.common.tiers); only when nothing
    matches literally does the typo-tolerant pass run, for a query with a word of at least
    `tiers.TYPO_MIN_WORD` letters.
    """
    found = await tiers.find(session, queries.SEARCH, query, customer_id, limit, bounds)
    return await queries.by_ids(session, found)
