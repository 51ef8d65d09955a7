"""Error responses documented on every route, so the OpenAPI spec lists what clients can get."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ProblemFieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this service is rendered."""

    type: str
    title: str
    status: int
    detail: str
    request_id: str | None = None
    errors: list[ProblemFieldError] | None = None


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description, "content": {"application/problem+json": {}}}


ERRORS_READ: dict[int | str, dict[str, Any]] = {
    400: _problem("Malformed request"),
    401: _problem("Missing, malformed, expired or otherwise invalid access token"),
    403: _problem("The caller's role may not do this"),
    404: _problem("No such resource"),
    422: _problem("Invalid parameter or body field (see `errors`)"),
    503: _problem("Database unavailable"),
}
ERRORS_WRITE: dict[int | str, dict[str, Any]] = {
    **ERRORS_READ,
    409: _problem("Conflicts with existing data (for example a duplicate email)"),
    413: _problem("Request body larger than 1 MiB"),
}
