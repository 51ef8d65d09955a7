"""Base classes for request and response bodies."""

from __future__ import annotations

import functools
import re
from datetime import datetime
from types import UnionType
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _mentions(annotation: Any, target: type) -> bool:
    """Whether a field's type is `target`, possibly optional or annotated (`Annotated[T, ...] | None`)."""
    if annotation is target:
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        return _mentions(get_args(annotation)[0], target)
    if origin is Union or origin is UnionType:
        return any(_mentions(arg, target) for arg in get_args(annotation))
    return False  # a container of `target` (list[bool]) is validated item by item, as pydantic does


_BLANK_RULE = (
    'Strings are trimmed; `""` (or only spaces) for a field that may be null means null; '
    'a required field given as `""` is 422.'
)


# Exactly the strings that str.strip() empties, so the spec admits what the service takes as null.
_BLANK = {
    "type": "string",
    "pattern": "^[" + "".join(f"\\u{ord(c):04x}" for c in map(chr, range(0x10000)) if c.isspace()) + "]*$",
    "description": "blank: null",
}


class RequestBody(BaseModel):
    """A client-supplied body: unknown and read-only fields are errors, not silently dropped.

    Every string is trimmed before it is validated and stored, and `""` (after trimming) for a
    field that may be null means null: forms send their empty inputs as `""`, and an empty email
    or company is no value, not a value. A required field given as `""` fails its own check
    (422 naming it); so does a PatchBody field listed in `_required`.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> Any:
        json_schema = handler(core_schema)
        resolved = handler.resolve_ref_schema(json_schema)
        said = resolved.get("description")
        resolved["description"] = f"{said}\n\n{_BLANK_RULE}" if said else _BLANK_RULE
        # A field that may be null also takes a blank string, and the spec says so.
        properties = resolved.get("properties", {})
        for name in _nullable_fields(cls):
            options = properties.get(name, {}).get("anyOf")
            if options is not None and {"type": "null"} in options:
                options.append(_BLANK)
        return json_schema

    @model_validator(mode="before")
    @classmethod
    def _trimmed_blank_is_null(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        blank_is_null = _nullable_fields(cls)
        normalized = {}
        for key, value in data.items():
            text = value.strip() if isinstance(value, str) else value
            normalized[key] = None if text == "" and key in blank_is_null else text
        return normalized

    @field_validator("*", mode="before")
    @classmethod
    def _documented_json_types(cls, value: Any, info: Any) -> Any:
        # pydantic's lax mode takes more than the spec documents: 0, 1 or "yes" for a boolean,
        # a number of seconds since 1970 for a date-time. A client that sends those has a bug.
        if value is None or info.field_name is None:
            return value
        is_bool, is_datetime = _strict_kinds(cls, info.field_name)
        if is_bool and not isinstance(value, bool):
            raise ValueError("must be true or false")
        if is_datetime and (not isinstance(value, str) or _NUMBER.fullmatch(value)):
            raise ValueError("must be an ISO 8601 date-time")
        return value


@functools.cache
def _nullable_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields (by name and alias) that take null, and so take `""` as null."""
    required: frozenset[str] = getattr(model, "_required", frozenset())
    names: set[str] = set()
    for name, field in model.model_fields.items():
        if name not in required and _mentions(field.annotation, type(None)):
            names.add(name)
            if field.alias:
                names.add(field.alias)
    return frozenset(names)


@functools.cache
def _strict_kinds(model: type[BaseModel], field: str) -> tuple[bool, bool]:
    """(is a boolean field, is a date-time field): worked out once per field, not per request."""
    annotation = model.model_fields[field].annotation
    return _mentions(annotation, bool), _mentions(annotation, datetime)


class PatchBody(RequestBody):
    """A partial update: absent fields stay; `null` clears optional ones.

    Subclasses list the fields that may not be cleared in `_required`.
    """

    _required: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> Any:
        # Every field is `X | None` so that "absent" can be told from "sent"; the spec must not
        # offer `null` for the `_required` ones, which refuse it.
        json_schema = super().__get_pydantic_json_schema__(core_schema, handler)
        properties = handler.resolve_ref_schema(json_schema).get("properties", {})
        for name in cls._required:
            prop = properties.get(name)
            if prop is None or "anyOf" not in prop:
                continue
            options = [option for option in prop.pop("anyOf") if option != {"type": "null"}]
            if prop.get("default", ...) is None:
                del prop["default"]
            if len(options) == 1:
                prop.update(options[0])
            else:
                prop["anyOf"] = options
        return json_schema

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
