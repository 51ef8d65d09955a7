"""Base classes for request and response bodies."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator


class RequestBody(BaseModel):
    """A client-supplied body: unknown and read-only fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class PatchBody(RequestBody):
    """A partial update: absent fields stay; `null` clears optional ones.

    Subclasses list the fields that may not be cleared in `_required`.
    """

    _required: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _required_not_null(cls, value: Any, info: Any) -> Any:
        if value is None and info.field_name in cls._required:
            raise ValueError("is required and cannot be null")
        return value

    def changes(self) -> dict[str, Any]:
        """Only the fields the client sent, with their (validated) values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class ResponseBody(BaseModel):
    model_config = ConfigDict(from_attributes=True)
