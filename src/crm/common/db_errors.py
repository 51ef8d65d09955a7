"""Translating database constraint violations into domain errors."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm.errors import Conflict, DomainError, ValidationFailed


def constraint_name(exc: IntegrityError) -> str | None:
    orig = exc.orig
    # asyncpg's error is wrapped by SQLAlchemy's adapter; the original keeps the name.
    cause = getattr(orig, "__cause__", None) or orig
    return getattr(cause, "constraint_name", None)


async def flush(session: AsyncSession, known: dict[str, DomainError]) -> None:
    """Flush, turning the named constraint violations into the given domain errors.

    Services pre-check what they can; this catches the races the pre-checks cannot.
    """
    try:
        await session.flush()
    except IntegrityError as exc:
        name = constraint_name(exc)
        if name in known:
            raise known[name] from exc
        if name and name.startswith("fk_"):
            raise ValidationFailed(f"a referenced record no longer exists ({name})") from exc
        raise Conflict("the change conflicts with the current data") from exc
