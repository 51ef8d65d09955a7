"""The contacts' read statements: typed select()s over the request's session.

The rules (the primary-contact invariant, locks, errors) are in crm.contacts.service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from crm.common import tiers
from crm.contacts.models import Contact, search_text_of
from crm.customers.models import Customer


def ordered(stmt: Select[Any]) -> Select[Any]:
    """Primary first, then newest; id breaks ties so the order is total."""
    return stmt.order_by(Contact.is_primary.desc(), Contact.created_at.desc(), Contact.id.desc())


async def of_customer(session: AsyncSession, customer_id: UUID) -> list[Contact]:
    return list(await session.scalars(ordered(select(Contact).where(Contact.customer_id == customer_id))))


async def customer_exists(session: AsyncSession, customer_id: UUID) -> bool:
    return await session.scalar(select(Customer.id).where(Customer.id == customer_id)) is not None


async def customer_of(session: AsyncSession, contact_id: UUID) -> UUID | None:
    return await session.scalar(select(Contact.customer_id).where(Contact.id == contact_id))


async def with_customer(session: AsyncSession, contact_id: UUID) -> tuple[Contact, Customer] | None:
    row = (
        await session.execute(
            select(Contact, Customer).join(Customer, Customer.id == Contact.customer_id).where(Contact.id == contact_id)
        )
    ).first()
    return (row[0], row[1]) if row is not None else None


async def oldest(session: AsyncSession, customer_id: UUID) -> Contact | None:
    return await session.scalar(
        select(Contact).where(Contact.customer_id == customer_id).order_by(Contact.created_at, Contact.id).limit(1)
    )


async def now(session: AsyncSession) -> Any:
    """The transaction's now(), which the rows it writes carry."""
    return await session.scalar(select(func.now()))


async def by_ids(session: AsyncSession, ids: Sequence[UUID]) -> list[tuple[Contact, Customer]]:
    """The contacts of `ids`, in that order, each with its customer (one statement)."""
    if not ids:
        return []
    rows = await session.execute(
        select(Contact, Customer).join(Customer, Customer.id == Contact.customer_id).where(Contact.id.in_(ids))
    )
    found = {contact.id: (contact, customer) for contact, customer in rows.tuples()}
    return [found[i] for i in ids if i in found]  # one deleted in between is left out


# --- search ---


def _field(
    value: ColumnElement[str], start: ColumnElement[str], *where: ColumnElement[bool], second: Any = None
) -> tiers.ValueWalk:
    order = (value, *([second] if second is not None else []), Contact.id)
    return tiers.ValueWalk(
        (*tiers.starts_with(value, start), *where), value == tiers.bytewise(start), value, order, second
    )


def _walks(shape: tiers.Shape) -> list[tiers.ValueWalk]:
    """Exact and prefix walks, each over its own index (the 2026-12-04-0330 migration).

    "first last" (or "last first") starts with the query either because the first name does
    (the first-name walk finds that row, with a smaller value) or because the first name
    equals the query up to one of its spaces and the last name starts with the rest: one
    walk per space of the query, over the (first, last) index; the same for "last first".
    """
    text = tiers.lowered_param("q")
    first, last = tiers.bytewise(func.lower(Contact.first_name)), tiers.bytewise(func.lower(Contact.last_name))
    walks = [
        _field(first, text, second=last),
        _field(last, text, second=first),
        _field(tiers.bytewise(func.lower(Contact.email)), text, Contact.email.is_not(None)),
        _field(tiers.bytewise(func.lower(Contact.position)), text, Contact.position.is_not(None)),
    ]
    if shape.digits:
        walks.append(_field(tiers.digits_key(Contact.phone), tiers.text_param("digits"), Contact.phone.is_not(None)))
    full_names = (
        (first, last, tiers.bytewise(func.lower(Contact.first_name + " " + Contact.last_name))),
        (last, first, tiers.bytewise(func.lower(Contact.last_name + " " + Contact.first_name))),
    )
    for n in range(shape.spaces):
        whole, start = tiers.lowered_param(f"left_{n}"), tiers.lowered_param(f"right_{n}")
        for one, other, full_name in full_names:
            matches = (one == tiers.bytewise(whole), *tiers.starts_with(other, start))
            walks.append(tiers.ValueWalk(matches, other == tiers.bytewise(start), full_name, (one, other, Contact.id)))
    return walks


# One customer's contacts, by its index (a customer has few).
_OF_CUSTOMER = select(Contact.id).where(Contact.customer_id == bindparam("customer_id", type_=Uuid))

# Exact and prefix matches by the matched value (lowered, bytewise), then the other name for
# first/last name matches, then id; substring matches newest first (crm.common.tiers).
SEARCH = tiers.SearchSpec(
    entity=Contact,
    text_columns=(
        Contact.first_name,
        Contact.last_name,
        Contact.first_name + " " + Contact.last_name,
        Contact.last_name + " " + Contact.first_name,
        Contact.email,
        Contact.position,
    ),
    phone_columns=(Contact.phone,),
    keys=(),
    order=(Contact.created_at.desc(), Contact.id.desc()),
    document=search_text_of(Contact.first_name, Contact.last_name, Contact.email, Contact.position, Contact.phone),
    value_walks=_walks,
    of_customer=_OF_CUSTOMER,
)
