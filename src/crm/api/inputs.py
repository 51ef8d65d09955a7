"""What a request carries, read once into the endpoint's declared models.

An endpoint declares its path, query and header parameters as one pydantic model (its
`params`) and its JSON body as another; this module reads the raw ASGI request into them.
A field named in the path template comes from the path, a field marked `HEADER` from the
headers, every other field from the query string. Validation failures name the field as the
client spelled it (the alias), through the one error renderer in crm.errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.types import Receive, Scope

from crm.errors import FieldError, MalformedJSON, UnsupportedMediaType, ValidationFailed, field_errors


class _HeaderMarker:
    """Annotated[...] metadata: this parameter is a request header (named by its alias)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "HEADER"


HEADER = _HeaderMarker()


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """Where each field of a params model is read from, worked out once per endpoint."""

    model: type[BaseModel]
    path: frozenset[str]  # aliases taken from the path
    headers: tuple[tuple[bytes, str], ...]  # (lower-case header name, alias)
    query: frozenset[str]  # aliases taken from the query string

    @classmethod
    def of(cls, model: type[BaseModel], path_names: frozenset[str]) -> ParamSpec:
        path: set[str] = set()
        headers: list[tuple[bytes, str]] = []
        query: set[str] = set()
        for name, field in model.model_fields.items():
            alias = field.alias or name
            if alias in path_names:
                path.add(alias)
            elif any(isinstance(m, _HeaderMarker) for m in field.metadata):
                headers.append((alias.lower().encode("latin-1"), alias))
            else:
                query.add(alias)
        missing = path_names - path
        if missing:
            raise TypeError(f"{model.__name__} declares no field for path parameter(s) {sorted(missing)}")
        return cls(model, frozenset(path), tuple(headers), frozenset(query))

    def read(self, scope: Scope, path_values: dict[str, Any]) -> BaseModel:
        values: dict[str, Any] = {}
        query_string: bytes = scope.get("query_string", b"")
        if query_string and self.query:
            # Starlette's reading: latin-1 bytes, percent-escapes as UTF-8, the last value of a
            # repeated name wins; names the endpoint does not declare are ignored.
            pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
            values = {name: value for name, value in pairs if name in self.query}
        for header, alias in self.headers:
            for name, value in scope["headers"]:
                if name == header:
                    values[alias] = value.decode("latin-1")
                    break
        values.update(path_values)
        try:
            return self.model.model_validate(values)
        except ValidationError as exc:
            raise ValidationFailed.of(field_errors(exc)) from None


_JSON_TYPES = (b"application/json",)


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media in _JSON_TYPES or (media.startswith(b"application/") and media.endswith(b"+json"))


async def read_body(scope: Scope, receive: Receive, model: type[BaseModel]) -> BaseModel:
    """The JSON body, validated into `model`.

    Parsed with Python's json module before validation, so duplicate names keep the last value
    everywhere (validation, storage, the idempotency fingerprint) and a UTF-8 BOM is tolerated.
    """
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    raw = b"".join(chunks)
    if not raw:
        raise ValidationFailed.of([FieldError("body", "field required")])
    if not _is_json(content_type):
        raise UnsupportedMediaType("the body must be JSON (Content-Type: application/json)")
    try:
        data = json.loads(raw)
    except RecursionError:
        raise MalformedJSON("malformed JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJSON(f"malformed JSON: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed.of(field_errors(exc)) from None
    except RecursionError:
        raise ValidationFailed.of([FieldError("body", "nested too deeply")]) from None
