"""Deterministic, realistic rows for `crm demo-data`, produced in chunks of customers.

A chunk depends only on (seed, chunk number), so the same arguments always give the
same data, and chunks could be generated in any order or in parallel.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from crm.demo import names as n

CUSTOMER_COLUMNS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "company_name",
    "tax_id",
    "address",
    "city",
    "postal_code",
    "country",
    "status",
    "type",
    "notes",
    "owner_id",
    "created_at",
    "updated_at",
    "version",
)
CONTACT_COLUMNS = (
    "id",
    "customer_id",
    "first_name",
    "last_name",
    "position",
    "email",
    "phone",
    "is_primary",
    "created_at",
    "updated_at",
    "version",
)
INTERACTION_COLUMNS = (
    "id",
    "customer_id",
    "contact_id",
    "user_id",
    "type",
    "subject",
    "description",
    "date",
    "created_at",
    "updated_at",
    "version",
)
HISTORY_COLUMNS = (
    "id",
    "at",
    "entity",
    "entity_id",
    "customer_id",
    "action",
    "actor_user_id",
    "actor_role",
    "version",
    "changes",
)
# The order projection (crm.orders.projection) as `crm orders sync` would have filled it.
ORDER_COLUMNS = (
    "order_id",
    "customer_id",
    "status",
    "total_amount",
    "created_at",
    "updated_at",
    "version",
    "deleted",
    "applied_at",
)
FIGURES_COLUMNS = (
    "customer_id",
    "total_orders",
    "total_spent",
    "first_order_date",
    "last_order_date",
    "orders_synced_at",
)
# As crm.history.service leaves them out of `changes`: the entry itself carries them.
_NOT_FIELDS = frozenset({"id", "version", "created_at", "updated_at"})

# Realistic skew: most customers are active or paying; few are inactive.
STATUSES = (("active", 38), ("customer", 27), ("lead", 14), ("prospect", 11), ("inactive", 7), ("pending", 3))
TYPES = (("individual", 48), ("business", 36), ("nonprofit", 4), ("government", 3), (None, 9))
INTERACTION_TYPES = (("email", 34), ("call", 30), ("note", 15), ("meeting", 11), ("task", 10))
USERS = 50
SPAN = timedelta(days=3 * 365)
END = datetime(2026, 11, 1, tzinfo=UTC)
START = END - SPAN
_SPAN_SECONDS = int(SPAN.total_seconds())


# Who has ordered: by status, the share of customers with orders (about 45% overall).
ORDERING_SHARE = {"customer": 0.9, "active": 0.55, "inactive": 0.5, "prospect": 0.1, "lead": 0.05, "pending": 0.02}
ORDER_STATUSES = (
    ("delivered", 70),
    ("shipped", 8),
    ("processing", 5),
    ("new", 4),
    ("cancelled", 8),
    ("returned", 5),
)
_NOT_COUNTED = frozenset({"cancelled", "returned"})
# When the demo's projection was last synced: the end of the generated span.
SYNCED_AT = END


@dataclass
class Chunk:
    customers: list[tuple[Any, ...]] = field(default_factory=list)
    contacts: list[tuple[Any, ...]] = field(default_factory=list)
    interactions: list[tuple[Any, ...]] = field(default_factory=list)
    history: list[tuple[Any, ...]] = field(default_factory=list)
    orders: list[tuple[Any, ...]] = field(default_factory=list)
    figures: list[tuple[Any, ...]] = field(default_factory=list)


def user_ids(seed: int) -> list[uuid.UUID]:
    rng = random.Random(f"users-{seed}")  # noqa: S311 - demo data, not secrets
    return [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(USERS)]


def _weighted(rng: random.Random, table: tuple[tuple[Any, int], ...], k: int) -> list[Any]:
    values = [v for v, _ in table]
    weights = [w for _, w in table]
    return rng.choices(values, weights, k=k)


def _count(rng: random.Random, mean: float) -> int:
    """A small non-negative count with the given mean (geometric-ish, like real CRM data)."""
    if mean <= 0:
        return 0
    whole = int(mean)
    return whole + (1 if rng.random() < mean - whole else 0) + rng.choice((-1, 0, 0, 1)) * (whole > 0)


def _person(rng: random.Random) -> tuple[str, str, bool]:
    if rng.random() < 0.7:
        female = rng.random() < 0.5
        first = rng.choice(n.UA_FEMALE if female else n.UA_MALE)
        last = rng.choice(n.UA_LAST)
        return first, last, True
    return rng.choice(n.EN_FIRST), rng.choice(n.EN_LAST), False


def _phone(rng: random.Random, ukrainian: bool) -> str:
    if ukrainian:
        return f"+380 {rng.choice((50, 63, 66, 67, 68, 73, 93, 95, 96, 97, 98, 99))} {rng.randrange(10**7):07d}"
    return f"+44 7{rng.randrange(10**9):09d}"


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


@cache
def _fields(columns: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
    return tuple((i, name) for i, name in enumerate(columns) if name not in _NOT_FIELDS)


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _created(
    rng: random.Random,
    entity: str,
    columns: tuple[str, ...],
    row: tuple[Any, ...],
    customer_id: uuid.UUID,
    actor: uuid.UUID,
) -> tuple[Any, ...]:
    """The `created` history entry of a generated row, as crm.history.service writes one:
    every field set, with old null, at the moment the row was created (rows start with their
    id; each of the three column lists has created_at)."""
    changes = {name: {"old": None, "new": _json_value(row[i])} for i, name in _fields(columns) if row[i] is not None}
    return (
        uuid.UUID(int=rng.getrandbits(128), version=4),
        row[columns.index("created_at")],
        entity,
        row[0],
        customer_id,
        "created",
        actor,
        "manager",
        1,
        _dumps(changes),
    )


def _orders(
    rng: random.Random, customer_id: uuid.UUID, status: str, created: datetime, chunk: Chunk
) -> tuple[Any, ...]:
    """The customer's orders (appended to the chunk) and its figures row, summed from exactly those
    rows as crm.orders.projection computes them; a customer without orders: 0, 0.00, never synced."""
    count = 0
    if rng.random() < ORDERING_SHARE.get(status, 0.0):
        count = min(40, 1 + int(rng.expovariate(1 / 3)))
    spent, counted, dates = Decimal(0), 0, []
    span = max(1, int((END - created).total_seconds()))
    for placed_status in _weighted(rng, ORDER_STATUSES, count):
        placed = created + timedelta(seconds=rng.randrange(span))
        amount = Decimal(f"{min(99_999.99, rng.lognormvariate(6.5, 1.0)):.2f}")
        updated = min(END, placed + timedelta(seconds=rng.randrange(86400 * 14)))
        chunk.orders.append(
            (
                uuid.UUID(int=rng.getrandbits(128), version=4),
                customer_id,
                placed_status,
                amount,
                placed,
                updated,
                rng.randint(1, 4),
                False,
                SYNCED_AT,
            )
        )
        if placed_status not in _NOT_COUNTED:
            spent += amount
            counted += 1
            dates.append(placed)
    if not count:
        return (customer_id, 0, Decimal("0.00"), None, None, None)
    return (customer_id, counted, spent, min(dates, default=None), max(dates, default=None), SYNCED_AT)


def generate_chunk(
    seed: int,
    chunk_no: int,
    first_index: int,
    count: int,
    contacts_per_customer: float,
    interactions_per_customer: float,
    users: list[uuid.UUID],
    *,
    history: bool = True,
) -> Chunk:
    """One chunk of customers with their contacts and interactions; with `history`, also the
    `created` entry of each record."""
    rng = random.Random(f"{seed}-{chunk_no}")  # noqa: S311
    # History ids and orders from their own streams, so the records stay what they were before them.
    history_rng = random.Random(f"history-{seed}-{chunk_no}")  # noqa: S311
    orders_rng = random.Random(f"orders-{seed}-{chunk_no}")  # noqa: S311
    chunk = Chunk()
    statuses = _weighted(rng, STATUSES, count)
    types = _weighted(rng, TYPES, count)
    for offset in range(count):
        index = first_index + offset
        customer_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        first, last, ukrainian = _person(rng)
        type_ = types[offset]
        company = tax_id = None
        if type_ == "business":
            company = f"{rng.choice(n.COMPANY_FORMS)} {rng.choice(n.COMPANY_ROOTS)}{rng.choice(n.COMPANY_TAILS)}"
            tax_id = f"{rng.randrange(10**7, 10**8)}"  # EDRPOU: 8 digits
        elif type_ == "government":
            company = f"{rng.choice(n.GOVERNMENT)} {rng.choice(n.UA_CITIES)}"
            tax_id = f"{rng.randrange(10**7, 10**8)}"
        elif type_ == "nonprofit":
            company = f"{rng.choice(n.NONPROFIT)} «{rng.choice(n.COMPANY_ROOTS)}»"
        created = START + timedelta(seconds=rng.randrange(_SPAN_SECONDS))
        updated = created + timedelta(seconds=rng.randrange(86400 * 30))
        city = rng.choice(n.UA_CITIES if ukrainian else n.EN_CITIES)
        street = rng.choice(n.UA_STREETS if ukrainian else n.EN_STREETS)
        owner = users[rng.randrange(USERS)]
        chunk.customers.append(
            (
                customer_id,
                first,
                last,
                # The running index makes every email unique; the seed keeps runs apart.
                f"{n.latin(first).lower()}.{n.latin(last).lower()}.{seed}.{index}@example.com",
                _phone(rng, ukrainian),
                company,
                tax_id,
                f"{street}, {rng.randint(1, 200)}",
                city,
                f"{rng.randrange(10000, 99999)}",
                "Україна" if ukrainian else "United Kingdom",
                statuses[offset],
                type_,
                None,
                owner,
                created,
                updated,
                1,
            )
        )
        if history:
            chunk.history.append(
                _created(history_rng, "customer", CUSTOMER_COLUMNS, chunk.customers[-1], customer_id, owner)
            )
        chunk.figures.append(_orders(orders_rng, customer_id, statuses[offset], created, chunk))
        contact_ids: list[uuid.UUID] = []
        for k in range(max(0, _count(rng, contacts_per_customer))):
            contact_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            cfirst, clast, cua = _person(rng)
            ccreated = created + timedelta(seconds=rng.randrange(86400 * 90) + k)
            chunk.contacts.append(
                (
                    contact_id,
                    customer_id,
                    cfirst,
                    clast,
                    rng.choice(n.POSITIONS),
                    f"{n.latin(cfirst).lower()}.{n.latin(clast).lower()}.{index}.{k}@example.org",
                    _phone(rng, cua),
                    k == 0,
                    ccreated,
                    ccreated,
                    1,
                )
            )
            if history:
                chunk.history.append(
                    _created(history_rng, "contact", CONTACT_COLUMNS, chunk.contacts[-1], customer_id, owner)
                )
            contact_ids.append(contact_id)
        kinds = _weighted(rng, INTERACTION_TYPES, max(0, _count(rng, interactions_per_customer)))
        for kind in kinds:
            when = START + timedelta(seconds=rng.randrange(_SPAN_SECONDS))
            chunk.interactions.append(
                (
                    uuid.UUID(int=rng.getrandbits(128), version=4),
                    customer_id,
                    rng.choice(contact_ids) if contact_ids and rng.random() < 0.6 else None,
                    users[rng.randrange(USERS)],
                    kind,
                    rng.choice(n.SUBJECTS[kind]),
                    rng.choice(n.DESCRIPTIONS),
                    when,
                    when,
                    when,
                    1,
                )
            )
            row = chunk.interactions[-1]
            if history:
                chunk.history.append(
                    _created(history_rng, "interaction", INTERACTION_COLUMNS, row, customer_id, row[3])
                )
    return chunk
