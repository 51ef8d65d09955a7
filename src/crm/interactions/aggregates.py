"""Interaction counts maintained by triggers in the same transaction as each write.

Statistics over the whole data set, and the totals of the date-range list, read these small
tables instead of scanning millions of interactions; only the partial UTC days at the edges
of a date-time range are counted from `interactions` itself (through its date index). Each
shape answers one question:

- interaction_daily_counts (day, type, user_id): one user's figures, or any range's byUser;
- interaction_day_counts (day, type): everyone's figures over a range;
- interaction_user_counts (user_id): all-time byUser;
- interaction_day_totals (day): everyone's byDate over a range of whole days;
- interaction_type_totals (type): all-time byType / total;
- interaction_month_days (month): all-time byDate already rendered, one JSON fragment a month;
- interaction_month_user_counts (month, user_id): a long range's byUser, by whole months
  (crm_users_between in the SQL adds the days at its ends).

The triggers are `crm/interactions/sql/rollups.sql`, the rebuild after a bulk load
`crm/common/sql/rebuild_aggregates.sql`.
Rows whose count fell back to zero stay (the trigger only adds deltas); readers skip them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import BigInteger, ColumnElement, Date, Index, Select, String, Text, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import Uuid

from crm.common.dates import DateRange
from crm.db.models import Base
from crm.db.reads import DriverStatement


class InteractionDailyCount(Base):
    __tablename__ = "interaction_daily_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_interaction_daily_counts_user_id_day", "user_id", "day"),)


class InteractionDayCount(Base):
    __tablename__ = "interaction_day_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class InteractionUserCount(Base):
    __tablename__ = "interaction_user_counts"

    user_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class InteractionDayTotal(Base):
    """Interactions per UTC day, all types and users (the all-time statistics' byDate)."""

    __tablename__ = "interaction_day_totals"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class InteractionTypeTotal(Base):
    """Interactions per type over all time (the all-time statistics' byType)."""

    __tablename__ = "interaction_type_totals"

    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class InteractionMonthDays(Base):
    """One UTC month of the all-time byDate, rendered: `"2025-05-01" : 3, "2025-05-02" : 7`.

    The entries are exactly what json_object_agg prints for the month's non-zero day totals,
    ascending, so joining the months in order with ", " gives the byDate object's inside.
    A month whose days all fell back to zero keeps its row with an empty `days`.
    """

    __tablename__ = "interaction_month_days"

    month: Mapped[date] = mapped_column(Date, primary_key=True)  # the month's first day
    days: Mapped[str] = mapped_column(Text)


class InteractionMonthUserCount(Base):
    """Interactions per UTC calendar month and user, all types."""

    __tablename__ = "interaction_month_user_counts"

    month: Mapped[date] = mapped_column(Date, primary_key=True)  # the month's first day
    user_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


@dataclass
class Tally:
    by_type: Counter[str] = field(default_factory=Counter)
    by_date: Counter[str] = field(default_factory=Counter)
    by_user: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.by_type.update(other.by_type)
        self.by_date.update(other.by_date)
        self.by_user.update(other.by_user)


@dataclass(frozen=True, slots=True)
class Split:
    """A date-time range cut into whole UTC days (served by the roll-ups) and edge pieces."""

    first_day: date | None  # inclusive; None = unbounded
    end_day: date | None  # exclusive; None = unbounded
    edges: tuple[DateRange, ...]  # partial days, counted from the interactions table

    @property
    def has_whole_days(self) -> bool:
        return self.first_day is None or self.end_day is None or self.first_day < self.end_day


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def split(dates: DateRange) -> Split:
    start = dates.start.astimezone(UTC) if dates.start else None
    end = dates.end.astimezone(UTC) if dates.end else None
    first_day = end_day = None
    edges: list[DateRange] = []
    if start is not None:
        first_day = start.date() if start == _midnight(start.date()) else start.date() + timedelta(days=1)
    if end is not None:
        end_day = end.date()
    if first_day is not None and end_day is not None and first_day >= end_day:
        # No whole day inside: the range is one piece of raw rows.
        return Split(first_day, first_day, (DateRange(start, end),))
    if start is not None and first_day is not None and start < _midnight(first_day):
        edges.append(DateRange(start, _midnight(first_day)))
    if end is not None and end_day is not None and end > _midnight(end_day):
        edges.append(DateRange(_midnight(end_day), end))
    return Split(first_day, end_day, tuple(edges))


def _day_range(column: ColumnElement[date] | Mapped[date], whole: Split) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if whole.first_day is not None:
        where.append(column >= whole.first_day)
    if whole.end_day is not None:
        where.append(column < whole.end_day)
    return where


async def _fetch(connection: asyncpg.Connection, statement: Select[*tuple[Any, ...]]) -> list[asyncpg.Record]:
    """A statement whose values are bound in it, run on the driver connection."""
    return await DriverStatement.of(statement).fetch(connection, {})


async def whole_days(connection: asyncpg.Connection, whole: Split, user_id: UUID | None) -> Tally:
    """Counts over the whole UTC days of `whole`, from the roll-ups only (on a read connection,
    inside the caller's snapshot)."""
    tally = Tally()
    if not whole.has_whole_days:
        return tally
    if user_id is not None:
        daily = InteractionDailyCount
        rows = await _fetch(
            connection,
            select(daily.day, daily.type, daily.n).where(
                daily.user_id == user_id, daily.n != 0, *_day_range(daily.day, whole)
            ),
        )
        for day, type_, n in rows:
            tally.by_type[type_] += n
            tally.by_date[day.isoformat()] += n
            tally.by_user[str(user_id)] += n
        return tally

    days = InteractionDayCount
    # Summed in SQL: a few thousand (day, type) rows become one row per day and per type,
    # so the Python side handles ~1,100 rows for three years instead of ~5,500.
    in_range = _day_range(days.day, whole)
    per_day = await _fetch(
        connection,
        select(func.to_char(days.day, "YYYY-MM-DD"), func.sum(days.n))
        .where(*in_range)
        .group_by(days.day)
        .having(func.sum(days.n) != 0),
    )
    tally.by_date.update({day: int(n) for day, n in per_day})
    per_type = await _fetch(connection, select(days.type, func.sum(days.n)).where(*in_range).group_by(days.type))
    tally.by_type.update({type_: int(n) for type_, n in per_type})

    if whole.first_day is None and whole.end_day is None:
        users = await _fetch(
            connection, select(InteractionUserCount.user_id, InteractionUserCount.n).where(InteractionUserCount.n != 0)
        )
    else:
        users = await _USERS_BETWEEN.fetch(connection, {"first_day": whole.first_day, "end_day": whole.end_day})
    for user, n in users:
        tally.by_user[str(user)] += int(n)
    return tally


async def whole_day_count(session: AsyncSession, whole: Split, type_: str | None, user_id: UUID | None) -> int:
    """How many interactions (of one type, of one user, if given) the whole UTC days of `whole` hold."""
    if not whole.has_whole_days:
        return 0
    where: list[ColumnElement[bool]] = []
    table: type[InteractionDailyCount | InteractionDayCount | InteractionTypeTotal]
    if user_id is not None:
        table = InteractionDailyCount
        where = [InteractionDailyCount.user_id == user_id, *_day_range(InteractionDailyCount.day, whole)]
    elif whole.first_day is None and whole.end_day is None:
        table = InteractionTypeTotal
    else:
        table = InteractionDayCount
        where = _day_range(InteractionDayCount.day, whole)
    if type_ is not None:
        where.append(table.type == type_)
    return int(await session.scalar(select(func.coalesce(func.sum(table.n), 0)).where(*where)) or 0)


# The statistics of everyone over whole UTC days, as the response document itself: the
# dashboards' poll, so PostgreSQL reads the totals and renders the JSON in one statement
# (one snapshot, no row objects in Python). Key order as the API promises: every type in the
# enum's order, days ascending, users largest first then by id (bytewise, as Python).
#
# All time reads only small tables: 5 type totals, ~50 user counts and byDate pre-rendered by
# month (~36 strings joined; rendering ~1,100 day totals here was most of the poll's cost).
# The document is joined as text: handing the ~25 kB byDate to json_build_object would need
# a cast to json, which parses it all again. The fragments and the keys below are spaced as
# json_build_object and json_object_agg print them, so the bytes are those of the range
# statement below for the same counts (tests/interactions/test_rollups.py compares them).
_ALL_TIME = text("""
WITH types AS (
    SELECT t.type, t.pos, coalesce((SELECT n FROM interaction_type_totals WHERE type = t.type), 0) AS n
    FROM unnest(CAST(:types AS text[])) WITH ORDINALITY AS t(type, pos)
)
SELECT '{"total" : ' || (SELECT sum(n) FROM types)
    || ', "byType" : ' || (SELECT json_object_agg(type, n ORDER BY pos) FROM types)
    || ', "byDate" : ' || coalesce(
        (SELECT '{ ' || string_agg(days, ', ' ORDER BY month) || ' }' FROM interaction_month_days WHERE days <> ''),
        '{}')
    || ', "byUser" : ' || coalesce(
        (SELECT json_object_agg(user_id::text, n ORDER BY n DESC, user_id::text COLLATE "C")
         FROM interaction_user_counts WHERE n <> 0)::text,
        '{}')
    || '}'
""")

# A range (at least one bound) sums the (day, type) roll-up for its types and takes its users
# from crm_users_between (whole months, then days). Days print as YYYY-MM-DD: the pools pin
# DateStyle to ISO.
_RANGE = text("""
WITH types AS (
    SELECT t.type, t.pos, coalesce(
        (SELECT sum(n) FROM interaction_day_counts
         WHERE type = t.type
           AND (CAST(:first_day AS date) IS NULL OR day >= :first_day)
           AND (CAST(:end_day AS date) IS NULL OR day < :end_day)),
        0) AS n
    FROM unnest(CAST(:types AS text[])) WITH ORDINALITY AS t(type, pos)
), days AS (
    SELECT day, n FROM interaction_day_totals
    WHERE n <> 0
      AND (CAST(:first_day AS date) IS NULL OR day >= :first_day)
      AND (CAST(:end_day AS date) IS NULL OR day < :end_day)
), users AS (
    SELECT user_id::text AS key, n FROM crm_users_between(CAST(:first_day AS date), CAST(:end_day AS date))
)
SELECT json_build_object(
    'total', (SELECT sum(n) FROM types),
    'byType', (SELECT json_object_agg(type, n ORDER BY pos) FROM types),
    'byDate', coalesce((SELECT json_object_agg(day::text, n ORDER BY day) FROM days), '{}'),
    'byUser', coalesce((SELECT json_object_agg(key, n ORDER BY n DESC, key COLLATE "C") FROM users), '{}')
)::text
""")


_USERS_BETWEEN = DriverStatement.of(
    text("SELECT user_id, n FROM crm_users_between(CAST(:first_day AS date), CAST(:end_day AS date))")
)
_ALL_TIME_ON_DRIVER = DriverStatement.of(_ALL_TIME)
_RANGE_ON_DRIVER = DriverStatement.of(_RANGE)


async def statistics_document(connection: asyncpg.Connection, whole: Split, types: Sequence[str]) -> str:
    """The statistics JSON of everyone over the whole days of `whole` (no edges), from the totals:
    one prepared statement on the driver connection, one text value back."""
    if whole.first_day is None and whole.end_day is None:
        rows = await _ALL_TIME_ON_DRIVER.fetch(connection, {"types": list(types)})
    else:
        rows = await _RANGE_ON_DRIVER.fetch(
            connection, {"first_day": whole.first_day, "end_day": whole.end_day, "types": list(types)}
        )
    return str(rows[0][0])
