"""Customer counts by status and type, maintained by a trigger in the same transaction as each write.

`GET /api/customers/segments` reads these few rows instead of counting millions of
customers. Each (status, type) pair is spread over SLOTS rows, and a write bumps a random
one, so concurrent inserts rarely wait on the same counter row; readers sum the slots.
The trigger is `crm/customers/sql/segment_counts.sql`, the rebuild after a bulk load
`crm/common/sql/rebuild_aggregates.sql`.
"""

from __future__ import annotations

import asyncpg
from sqlalchemy import BigInteger, Select, SmallInteger, String, bindparam, func, select
from sqlalchemy.orm import Mapped, mapped_column

from crm.db.models import Base

SLOTS = 16


class CustomerSegmentCount(Base):
    __tablename__ = "customer_segment_counts"

    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    # NULL type is counted under "unspecified" (primary key columns cannot be NULL).
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


# One statement on the read pool: the dashboards poll this, and it needs no transaction.
_SEGMENT_COUNTS = """
SELECT status, type, sum(n)::bigint AS n FROM customer_segment_counts GROUP BY status, type HAVING sum(n) <> 0
"""


async def segment_counts(connection: asyncpg.Connection) -> list[tuple[str, str, int]]:
    """(status, type or "unspecified", count) for every pair that has customers."""
    return [(r["status"], r["type"], r["n"]) for r in await connection.fetch(_SEGMENT_COUNTS)]


def count_statement(by_status: bool, by_type: bool) -> Select[int]:
    """How many customers have the status / type bound to the parameters `status` / `type`
    (each only if asked for), without touching `customers`."""
    stmt = select(func.coalesce(func.sum(CustomerSegmentCount.n), 0))
    if by_status:
        stmt = stmt.where(CustomerSegmentCount.status == bindparam("status", type_=String))
    if by_type:
        stmt = stmt.where(CustomerSegmentCount.type == bindparam("type", type_=String))
    return stmt
