"""Interactions per UTC day, type and user, maintained by a trigger in the same transaction.

Statistics over the whole data set read these roll-ups (one row per day, type and user)
instead of scanning millions of interactions; only the partial days at the edges of a
date-time range are counted from the interactions table itself.
The trigger and the rebuild function are defined in the migration
(`2026-11-26-1545_maintained_aggregates`).
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

from sqlalchemy import BigInteger, Date, String
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Uuid

from crm.db import Base


class InteractionDailyCount(Base):
    __tablename__ = "interaction_daily_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)
