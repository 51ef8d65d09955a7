"""Field types shared by every feature's schemas and query parameters."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, EmailStr, Field, StringConstraints


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here instead of failing in the driver.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    # Lone UTF-16 surrogates ("\ud800" is valid JSON) cannot be encoded for the database.
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


Name100 = Annotated[
    str, BeforeValidator(_strip), StringConstraints(min_length=1, max_length=100), AfterValidator(_no_nul)
]
Subject = Annotated[
    str, BeforeValidator(_strip), StringConstraints(min_length=1, max_length=255), AfterValidator(_no_nul)
]
Email = Annotated[EmailStr, Field(max_length=255), AfterValidator(_no_nul)]
Phone = Annotated[str, StringConstraints(max_length=32), AfterValidator(_no_nul)]
Short = Annotated[str, StringConstraints(max_length=100), AfterValidator(_no_nul)]
Medium = Annotated[str, StringConstraints(max_length=255), AfterValidator(_no_nul)]
Long = Annotated[str, StringConstraints(max_length=500), AfterValidator(_no_nul)]
TaxId = Annotated[str, BeforeValidator(_strip), StringConstraints(max_length=50), AfterValidator(_no_nul)]
PostalCode = Annotated[str, BeforeValidator(_strip), StringConstraints(max_length=20), AfterValidator(_no_nul)]
Notes = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(_no_nul)]
SearchText = Annotated[str, StringConstraints(max_length=200), AfterValidator(_no_nul)]


def display_name(first_name: str, last_name: str, company_name: str | None, type_: str | None) -> str:
    """A customer's `name`: a business by its company name when it has one, anyone else by
    "first last" (the prototype front end shows and confirms customers by this)."""
    if type_ == "business" and company_name:
        return company_name
    return f"{first_name} {last_name}"
