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


def problem_doc(description: str) -> dict[str, Any]:
    """An error response as documented: application/problem+json with the Problem schema."""
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


ERRORS_READ: dict[int | str, dict[str, Any]] = {
    400: problem_doc("Malformed request"),
    401: problem_doc("Missing, malformed, expired or otherwise invalid access token"),
    403: problem_doc("The caller's role may not do this"),
    404: problem_doc("No such resource"),
    422: problem_doc("Invalid parameter or body field (see `errors`)"),
    429: problem_doc("Too many requests from this user this minute (see Retry-After)"),
    431: problem_doc("Request headers larger than 16 KiB in all"),
    503: problem_doc("Database unavailable"),
}
ERRORS_WRITE: dict[int | str, dict[str, Any]] = {
    **ERRORS_READ,
    409: problem_doc(
        "Conflicts with existing data (for example a duplicate email), or a request with the same "
        "Idempotency-Key is still running"
    ),
    412: problem_doc("If-Match does not match the current ETag: nothing was changed"),
    413: problem_doc("Request body larger than 1 MiB"),
    415: problem_doc("A body that is not JSON (Content-Type must be application/json)"),
}
