"""Customer counts by status and type, maintained by a trigger in the same transaction as each write.

`GET /api/customers/segments` reads these few rows instead of counting millions of
customers. Each (status, type) pair is spread over SLOTS rows, and a write bumps a random
one, so concurrent inserts rarely wait on the same counter row; readers sum the slots.
The trigger and the rebuild function are defined in the migration
(`2026-11-26-1545_maintained_aggregates`).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base

SLOTS = 16


class CustomerSegmentCount(Base):
    __tablename__ = "customer_segment_counts"

    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    # NULL type is counted under "unspecified" (primary key columns cannot be NULL).
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
