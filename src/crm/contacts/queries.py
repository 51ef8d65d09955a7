"""The contacts' read statements: typed select()s over the request's session.

The rules (the primary-contact invariant, locks, errors) are in crm.contacts.service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Select, String, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.common import tiers
from crm.common.search import phone_digits
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

_TOP = chr(0x10FFFF)  # above every string that starts with a given text (a noncharacter)


def _starts_with(value: ColumnElement[str], start: ColumnElement[str]) -> tuple[ColumnElement[bool], ...]:
    """`value` starts with `start`, as the range of such strings in bytewise order (an index range
    even in a generic plan, which a LIKE parameter is not)."""
    return (value >= tiers.bytewise(start), value < tiers.bytewise(start.op("||")(literal(_TOP, String))))


def _field(
    value: ColumnElement[str], start: ColumnElement[str], *where: ColumnElement[bool], second: Any = None
) -> tiers.ValueWalk:
    order = (value, *([second] if second is not None else []), Contact.id)
    return tiers.ValueWalk((*_starts_with(value, start), *where), value == tiers.bytewise(start), value, order, second)


def _walks(query: str) -> list[tiers.ValueWalk]:
    """Exact and prefix walks, each over its own index (the 2026-12-04-0330 migration).

    "first last" (or "last first") starts with the query either because the first name does
    (the first-name walk finds that row, with a smaller value) or because the first name
    equals the query up to one of its spaces and the last name starts with the rest: one
    walk per space of the query, over the (first, last) index; the same for "last first".
    """
    text = func.lower(literal(query, String))
    first, last = tiers.bytewise(func.lower(Contact.first_name)), tiers.bytewise(func.lower(Contact.last_name))
    walks = [
        _field(first, text, second=last),
        _field(last, text, second=first),
        _field(tiers.bytewise(func.lower(Contact.email)), text, Contact.email.is_not(None)),
        _field(tiers.bytewise(func.lower(Contact.position)), text, Contact.position.is_not(None)),
    ]
    digits = phone_digits(query)
    if digits:
        walks.append(_field(tiers.digits_key(Contact.phone), literal(digits, String), Contact.phone.is_not(None)))
    full_names = (
        (first, last, tiers.bytewise(func.lower(Contact.first_name + " " + Contact.last_name))),
        (last, first, tiers.bytewise(func.lower(Contact.last_name + " " + Contact.first_name))),
    )
    for at in (i for i, char in enumerate(query) if char == " "):
        whole, start = func.lower(literal(query[:at], String)), func.lower(literal(query[at + 1 :], String))
        for one, other, full_name in full_names:
            matches = (one == tiers.bytewise(whole), *_starts_with(other, start))
            walks.append(tiers.ValueWalk(matches, other == tiers.bytewise(start), full_name, (one, other, Contact.id)))
    return walks


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
)


def _of_customer(customer_id: UUID) -> Select[Any]:
    return select(Contact.id).where(Contact.customer_id == customer_id)


async def search(
    session: AsyncSession, query: str, customer_id: UUID | None, limit: int, bounds: tiers.Bounds
) -> list[UUID]:
    """Ids of the `limit` best literal matches: exact, prefix (both by the matched value), substring (newest first)."""
    if customer_id is not None:
        return await tiers.search_within(session, SEARCH, query, limit, _of_customer(customer_id))
    return await tiers.search(session, SEARCH, query, limit, bounds=bounds)


async def similar(
    session: AsyncSession, query: str, customer_id: UUID | None, limit: int, bounds: tiers.Bounds
) -> list[UUID]:
    """Ids of contacts with a word similar to the query, most similar first, then newest."""
    rows = _of_customer(customer_id) if customer_id is not None else None
    return await tiers.typo_tolerant(session, SEARCH, query, limit, rows, bounds)
