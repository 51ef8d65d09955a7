"""`startDate` / `endDate` parsing: ISO 8601 date or date-time, interpreted in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from crm.errors import ValidationFailed


@dataclass(frozen=True, slots=True)
class DateRange:
    start: datetime | None  # inclusive
    end: datetime | None  # exclusive


_NOT_A_DATE = "must be an ISO 8601 date or date-time"
_OUT_OF_RANGE = "is outside the dates that can be stored (0001-01-01 to 9999-12-31 in UTC)"
# The last moment Python can hold. An end that includes it has nothing after it: no bound.
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def _parse(value: str, field: str, *, is_end: bool) -> datetime | None:
    """The moment `value` names, in UTC; for an end, the first moment after the range (None: no end)."""
    text = value.strip()
    if "\x00" in text or len(text) > 64:
        raise ValidationFailed.field(field, _NOT_A_DATE)
    try:
        if len(text) == 10:
            # A date-only end includes that whole day: the range ends at the next midnight.
            moment = datetime.combine(date.fromisoformat(text), time.max if is_end else time.min, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValidationFailed.field(field, _NOT_A_DATE) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        # In UTC here, so an offset that pushes the moment past year 1 or 9999 is this field's
        # 422 rather than an OverflowError wherever the value is next compared or sent.
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise ValidationFailed.field(field, _OUT_OF_RANGE) from None
    if not is_end:
        return moment
    # An explicit end instant is inclusive; make it exclusive by the smallest step.
    return None if moment == _END_OF_TIME else moment + timedelta(microseconds=1)


def parse_range(start: str | None, end: str | None) -> DateRange:
    start_at = _parse(start, "startDate", is_end=False) if start else None
    end_at = _parse(end, "endDate", is_end=True) if end else None
    if start_at and end_at and start_at >= end_at:
        raise ValidationFailed.field("startDate", "must not be after endDate")
    return DateRange(start_at, end_at)
