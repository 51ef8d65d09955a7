"""`startDate` / `endDate` parsing: ISO 8601 date or date-time, interpreted in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from crm.errors import ValidationFailed


@dataclass(frozen=True, slots=True)
class DateRange:
    start: datetime | None  # inclusive
    end: datetime | None  # exclusive


def _parse(value: str, field: str, *, is_end: bool) -> datetime:
    text = value.strip()
    if "\x00" in text or len(text) > 64:
        raise ValidationFailed.field(field, "must be an ISO 8601 date or date-time")
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            # A date-only end includes that whole day: the range ends at the next midnight.
            start_of_day = datetime.combine(day, time.min, tzinfo=UTC)
            return start_of_day + timedelta(days=1) if is_end else start_of_day
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        # An explicit end instant is inclusive; make it exclusive by the smallest step.
        return moment + timedelta(microseconds=1) if is_end else moment
    except (ValueError, OverflowError):
        raise ValidationFailed.field(field, "must be an ISO 8601 date or date-time") from None


def parse_range(start: str | None, end: str | None) -> DateRange:
    start_at = _parse(start, "startDate", is_end=False) if start else None
    end_at = _parse(end, "endDate", is_end=True) if end else None
    if start_at and end_at and start_at >= end_at:
        raise ValidationFailed.field("startDate", "must not be after endDate")
    return DateRange(start_at, end_at)
