"""The OpenAPI 3.1 document, made from the same endpoint declarations that serve the requests.

Schemas come from pydantic (request bodies and parameters as they are validated, answers as they
are serialised), gathered in one pass so every model is one component referenced by name.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import TypeAdapter
from pydantic.json_schema import JsonSchemaMode
from starlette.responses import HTMLResponse

from crm.api.endpoint import Endpoint
from crm.api.inputs import ParamSpec
from crm.common.openapi import Problem

_REF = "#/components/schemas/{model}"
_BEARER = "HTTPBearer"

# (what, operation id, name) -> the schema of that thing
Key = tuple[str, str, str]


def _param_adapters(endpoint: Endpoint) -> list[tuple[Key, JsonSchemaMode, TypeAdapter[Any]]]:
    adapters: list[tuple[Key, JsonSchemaMode, TypeAdapter[Any]]] = []
    for name, info in endpoint.params.model_fields.items():
        alias = info.alias or name
        # The field's type and constraints without its alias, which means nothing outside a model.
        bare = copy.copy(info)
        bare.alias = bare.validation_alias = bare.serialization_alias = None
        adapter: TypeAdapter[Any] = TypeAdapter(Annotated[info.annotation, bare])  # type: ignore[arg-type]
        adapters.append((("param", endpoint.operation_id, alias), "validation", adapter))
    return adapters


def _parameters(endpoint: Endpoint, schemas: dict[tuple[Key, JsonSchemaMode], Any]) -> list[dict[str, Any]]:
    spec = ParamSpec.of(endpoint.params, endpoint.path_names)
    header_names = {alias for _, alias in spec.headers}
    parameters: list[dict[str, Any]] = []
    for name, info in endpoint.params.model_fields.items():
        alias = info.alias or name
        where = "path" if alias in spec.path else "header" if alias in header_names else "query"
        schema = dict(schemas[(("param", endpoint.operation_id, alias), "validation")])
        description = schema.pop("description", None) or info.description
        schema.pop("title", None)
        parameter: dict[str, Any] = {"name": alias, "in": where, "required": where == "path" or info.is_required()}
        if description:
            parameter["description"] = description
        parameter["schema"] = schema
        parameters.append(parameter)
    return parameters


def _success(endpoint: Endpoint, schemas: dict[tuple[Key, JsonSchemaMode], Any]) -> dict[str, Any]:
    answer = endpoint.answer
    response: dict[str, Any] = {"description": answer.description}
    if answer.model is not None:
        schema = schemas[(("answer", endpoint.operation_id, ""), "serialization")]
        response["content"] = {answer.media_type: {"schema": schema}}
    if answer.headers:
        response["headers"] = {
            name: {"description": description, "schema": {"type": "string"}}
            for name, description in answer.headers.items()
        }
    return response


def document(endpoints: Sequence[Endpoint], *, title: str, version: str, description: str) -> dict[str, Any]:
    ids = [endpoint.operation_id for endpoint in endpoints]
    if len(set(ids)) != len(ids):
        raise ValueError(f"operation ids must be unique: {sorted(i for i in ids if ids.count(i) > 1)}")
    adapters: list[tuple[Key, JsonSchemaMode, TypeAdapter[Any]]] = [
        (("problem", "", ""), "serialization", TypeAdapter(Problem))
    ]
    for endpoint in endpoints:
        adapters += _param_adapters(endpoint)
        if endpoint.body is not None:
            adapters.append((("body", endpoint.operation_id, ""), "validation", TypeAdapter(endpoint.body)))
        if endpoint.answer.model is not None:
            adapters.append(
                (("answer", endpoint.operation_id, ""), "serialization", TypeAdapter(endpoint.answer.model))
            )
    schemas, definitions = TypeAdapter.json_schemas(adapters, ref_template=_REF)
    components = dict(definitions.get("$defs", {}))
    # The error responses (crm.common.openapi.problem_doc) refer to it by this name.
    components["Problem"] = components.pop(_problem_name(schemas))

    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "tags": list(endpoint.tags),
            "summary": endpoint.summary,
            "operationId": endpoint.operation_id,
        }
        if endpoint.description:
            operation["description"] = endpoint.description
        parameters = _parameters(endpoint, schemas)
        if parameters:
            operation["parameters"] = parameters
        if endpoint.body is not None:
            body_schema = schemas[(("body", endpoint.operation_id, ""), "validation")]
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body_schema}}}
        responses: dict[str, Any] = {str(endpoint.answer.status): _success(endpoint, schemas)}
        responses.update({str(status): dict(doc) for status, doc in sorted(endpoint.errors.items(), key=str)})
        operation["responses"] = responses
        if endpoint.permission is not None:
            operation["security"] = [{_BEARER: []}]
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                _BEARER: {"type": "http", "scheme": "bearer", "description": "Access token issued by the Auth Service"}
            },
        },
    }


def _problem_name(schemas: dict[tuple[Key, JsonSchemaMode], Any]) -> str:
    ref: str = schemas[(("problem", "", ""), "serialization")].get("$ref", "")
    return ref.rsplit("/", 1)[-1]


def swagger_ui(openapi_url: str, title: str) -> HTMLResponse:
    """The interactive documentation page (Swagger UI from its CDN, reading `openapi_url`)."""
    return HTMLResponse(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title} - docs</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "{openapi_url}", dom_id: "#swagger-ui"}});</script>
</body></html>""")
