"""The contacts' read statements: typed select()s over the request's session.

The rules (the primary-contact invariant, locks, errors) are in crm.contacts.service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

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


async def by_ids(session: AsyncSession, ids: Sequence[UUID]) -> list[Contact]:
    """The contacts of `ids`, in that order."""
    if not ids:
        return []
    found = {c.id: c for c in await session.scalars(select(Contact).where(Contact.id.in_(ids)))}
    return [found[i] for i in ids if i in found]  # one deleted in between is left out


# --- search ---

# By name within a tier. The exact and prefix keys: both full names (which also serve each
# name on its own: see tiers.Key.joined), email, position and the phone's digits.
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
    keys=(
        tiers.Key(tiers.bytewise(func.lower(tiers.spaced(Contact.first_name, Contact.last_name))), joined=True),
        tiers.Key(tiers.bytewise(func.lower(tiers.spaced(Contact.last_name, Contact.first_name))), joined=True),
        tiers.Key(tiers.bytewise(func.lower(Contact.email)), where=Contact.email.is_not(None)),
        tiers.Key(tiers.bytewise(func.lower(Contact.position)), where=Contact.position.is_not(None)),
        tiers.Key(tiers.digits_key(Contact.phone), where=Contact.phone.is_not(None), digits=True),
    ),
    order=(Contact.last_name.asc(), Contact.first_name.asc(), Contact.id.asc()),
    document=search_text_of(Contact.first_name, Contact.last_name, Contact.email, Contact.position, Contact.phone),
)


def _of_customer(customer_id: UUID) -> Select[Any]:
    return select(Contact.id).where(Contact.customer_id == customer_id)


async def search(
    session: AsyncSession, query: str, customer_id: UUID | None, limit: int, bounds: tiers.Bounds
) -> list[UUID]:
    """Ids of the `limit` best literal matches: exact, prefix, substring; by name in each."""
    if customer_id is not None:
        return await tiers.search_within(session, SEARCH, query, limit, _of_customer(customer_id))
    return await tiers.search(session, SEARCH, query, limit, bounds=bounds)


async def similar(
    session: AsyncSession, query: str, customer_id: UUID | None, limit: int, bounds: tiers.Bounds
) -> list[UUID]:
    """Ids of contacts with a word similar to the query, most similar first, then by name."""
    rows = _of_customer(customer_id) if customer_id is not None else None
    return await tiers.typo_tolerant(session, SEARCH, query, limit, rows, bounds)
