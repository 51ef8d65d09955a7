"""The domain error tree and the one place that renders every error as problem+json.

Services raise `DomainError` subclasses; they never build HTTP responses. Each class
knows its status, so the handler below is the only code that turns errors into
RFC 9457 documents. Framework errors (unknown route, wrong method) are rendered
by the same function so clients see one shape.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from pydantic import ValidationError
from sqlalchemy.orm.exc import StaleDataError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from crm.log import request_id_var

log = structlog.get_logger("crm.errors")

PROBLEM_JSON = "application/problem+json"

# Fields that clients may read but never write; a body that carries one gets a 422
# that says so, instead of a generic "unknown field".
READ_ONLY_FIELDS = frozenset(
    {"id", "created_at", "updated_at", "user_id", "version", "customer", "contacts_count", "primary_contact"}
)


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str


class DomainError(Exception):
    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})


class BadRequest(DomainError):
    status, slug, title = 400, "bad-request", "Bad Request"


class Unauthorized(DomainError):
    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        # RFC 6750 3.1: name the scheme and, when a token was presented, why it failed, without
        # echoing it. A request that carried no bearer token at all gets the bare challenge.
        challenge = f'Bearer error="{error}"' if error else "Bearer"
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not Found"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflict"


class Erased(DomainError):
    """The record was erased on request (crm.erasure): it existed, and nothing of it is left."""

    status, slug, title = 410, "erased", "Gone"


class PreconditionFailed(DomainError):
    status, slug, title = 412, "precondition-failed", "Precondition Failed"


class MalformedJSON(DomainError):
    status, slug, title = 400, "malformed-json", "Bad Request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, errors=[FieldError("body", detail)])


class PayloadTooLarge(DomainError):
    status, slug, title = 413, "payload-too-large", "Payload Too Large"


class UnsupportedMediaType(DomainError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported Media Type"


class ValidationFailed(DomainError):
    status, slug, title = 422, "validation-error", "Unprocessable Content"

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        return cls(f"{field}: {message}", errors=[FieldError(field, message)])

    @classmethod
    def of(cls, errors: Sequence[FieldError]) -> ValidationFailed:
        return cls("; ".join(f"{e.field}: {e.message}" for e in errors[:5]), errors=errors)


class ServiceUnavailable(DomainError):
    status, slug, title = 503, "service-unavailable", "Service Unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """The database did not answer, and nothing of the request was written: retrying is safe."""

    slug = "database-unavailable"

    def __init__(self, detail: str = "the database is unavailable; retry shortly") -> None:
        super().__init__(detail, headers={"Retry-After": "2"})


class OutcomeUnknown(ServiceUnavailable):
    """The connection failed after a write (or its COMMIT) may have reached the database.

    Whether it was stored cannot be known here, so it is neither retried nor reported as
    "nothing changed": the client decides, and an Idempotency-Key makes its retry safe.
    """

    slug, title = "outcome-unknown", "Outcome Unknown"

    def __init__(
        self,
        detail: str = (
            "the connection to the database failed after the change was sent, so whether it was stored is "
            "unknown; check before retrying, or retry with the same Idempotency-Key header, which makes "
            "the retry safe"
        ),
    ) -> None:
        super().__init__(detail, headers={"Retry-After": "2"})


class ShuttingDown(ServiceUnavailable):
    """The server stopped the request at the end of its shutdown grace period, before it wrote anything."""

    slug = "shutting-down"

    def __init__(self) -> None:
        super().__init__(
            "the server is shutting down and nothing was changed; retry the request",
            headers={"Retry-After": "1", "Connection": "close"},
        )


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": f"urn:crm:problem:{slug or phrase.lower().replace(' ', '-')}",
        "title": title or phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Pydantic's errors as the fields a client named (aliases, dotted for nested ones)."""
    errors: list[FieldError] = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = err.get("loc", ())
        field = ".".join(str(p) for p in loc) or "body"
        kind = err.get("type", "")
        if kind == "extra_forbidden":
            last = str(loc[-1]) if loc else field
            message = "read-only field" if last in READ_ONLY_FIELDS else "unknown field"
        elif kind == "missing":
            message = "field required"
        else:
            # Pydantic prefixes custom errors with "Value error, "; the field name already says it.
            message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        errors.append(FieldError(field, message))
    return errors


def render(error: DomainError) -> JSONResponse:
    """The problem document of a domain error."""
    return problem_response(
        error.status, error.detail, slug=error.slug, title=error.title, errors=error.errors, headers=error.headers
    )


# Every NotFound names the id it missed ("customer <id> not found"); with the path's ids, those
# are the ids an erasure may have removed.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# app.state.erased_lookup (crm.erasure.service.erased_one): given ids, the detail of a 410 for
# the first erased one, or None. Asked only here, after a lookup missed: hot paths pay nothing.
ErasedLookup = Callable[[Any, list[UUID]], Awaitable[str | None]]


def _named_ids(detail: str, path_params: Mapping[str, Any]) -> list[UUID]:
    found = {UUID(match) for match in _UUID.findall(detail)}
    found |= {value for value in path_params.values() if isinstance(value, UUID)}
    for value in path_params.values():
        if isinstance(value, str) and _UUID.fullmatch(value):
            found.add(UUID(value))
    return sorted(found)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    if isinstance(exc, NotFound):
        lookup: ErasedLookup | None = getattr(request.app.state, "erased_lookup", None)
        ids = _named_ids(exc.detail, request.path_params) if lookup is not None else []
        if lookup is not None and ids:
            try:
                gone = await lookup(request.app.state, ids)
            except Exception as failure:  # noqa: BLE001 - the 404 stays true; only its precision is lost
                log.warning("erased-id lookup failed, answered 404", error=type(failure).__name__)
                gone = None
            if gone is not None:
                return render(Erased(gone))
    return render(exc)


# Framework errors that have a DomainError twin get the twin's `type`, so a client sees one
# problem type per condition whoever raised it (and whatever Python calls the status).
_HTTP_SLUGS = {
    cls.status: (cls.slug, cls.title)
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, Erased, PreconditionFailed, PayloadTooLarge)
}


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = "no such route"
    slug, title = _HTTP_SLUGS.get(exc.status_code, (None, None))
    return problem_response(exc.status_code, detail, slug=slug, title=title, headers=exc.headers)


async def _stale_write(_: Request, exc: Exception) -> JSONResponse:
    # Services lock rows before changing them, so this is a backstop: a concurrent writer
    # changed the row between our read and our UPDATE ... WHERE version = :old.
    del exc
    return problem_response(409, "the record was changed concurrently; reload it and retry", slug="conflict")


def install_error_handlers(app: Starlette, *, erased_lookup: ErasedLookup | None = None) -> None:
    app.state.erased_lookup = erased_lookup
    install_database_error_handler(app)
    app.add_exception_handler(StaleDataError, _stale_write)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


# --- database availability ---------------------------------------------------------------

# SQLSTATE classes that mean "the database is not answering", not "the request is wrong":
# 08 connection exceptions, 53 insufficient resources, 57P admin shutdown / cannot connect now,
# 57014 statement timeout.
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P")
_UNAVAILABLE_SQLSTATES = frozenset({"57014"})


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error, raised directly or wrapped by SQLAlchemy."""
    orig = getattr(exc, "orig", None)
    for candidate in (exc, getattr(orig, "__cause__", None), orig):
        sqlstate = getattr(candidate, "sqlstate", None)
        if isinstance(sqlstate, str):
            return sqlstate
    return None


def is_database_unavailable(exc: BaseException) -> bool:
    import sqlalchemy.exc as sa_exc

    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection within the pool timeout
        return True
    sqlstate = _sqlstate(exc)
    if sqlstate is not None and (
        sqlstate in _UNAVAILABLE_SQLSTATES or sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES)
    ):
        return True
    return is_connection_lost(exc)


# SQLSTATEs the server sends as it drops the session (08 connection exceptions, 57P01-57P05
# administrator shutdown, crash, idle timeouts): the statement in flight may or may not have
# taken effect. Any other error the server answers leaves the transaction rolled back.
_LOST_SQLSTATE_PREFIXES = ("08", "57P")


def is_connection_lost(exc: BaseException) -> bool:
    """The connection can no longer tell what became of the statement in flight.

    It dropped, the client gave up waiting (asyncpg's command timeout raises TimeoutError), or
    the request was cancelled mid-statement. Unlike an error the server answered (a constraint,
    a deadlock, its own statement_timeout), after which the transaction is known to be rolled
    back, whatever was sent may have been applied, or even committed.
    """
    import sqlalchemy.exc as sa_exc

    if isinstance(exc, asyncio.CancelledError):
        return True
    sqlstate = _sqlstate(exc)
    if sqlstate is not None:
        return sqlstate.startswith(_LOST_SQLSTATE_PREFIXES)
    if isinstance(exc, sa_exc.TimeoutError):  # the pool had no connection to hand out: nothing was sent
        return False
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        cause = getattr(exc.orig, "__cause__", None) or exc.orig
        return _is_transport_failure(cause) or "connection" in type(cause).__name__.lower()
    # Raw driver errors, from the read pool's connections used directly.
    return _is_transport_failure(exc)


def _is_transport_failure(exc: BaseException | None) -> bool:
    # OSError covers TimeoutError, which is how asyncpg reports its command timeout.
    if isinstance(exc, OSError | ConnectionError | asyncpg.PostgresConnectionError):
        return True
    return isinstance(exc, asyncpg.InterfaceError) and "connection" in str(exc).lower()


def _is_unstorable_text(exc: BaseException) -> bool:
    """The driver could not encode a string parameter (a lone UTF-16 surrogate such as the
    JSON escape "\\ud800", which Python's json accepts and UTF-8 cannot carry)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, UnicodeEncodeError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


# SQLSTATEs after which PostgreSQL has rolled the whole transaction back and the same request
# can simply be sent again: 40001 serialization failure, 40P01 deadlock (two writes taking the
# same rows in opposite orders: the maintained aggregates' rows are shared by many writers).
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})


async def _database_error(_: Request, exc: Exception) -> JSONResponse:
    sqlstate = _sqlstate(exc)
    if sqlstate in _RETRY_SQLSTATES:
        log.warning("transaction rolled back by the database, client told to retry", sqlstate=sqlstate)
        return problem_response(
            503,
            "the request collided with a concurrent write and nothing of it was stored; retry it",
            slug="retry",
            headers={"Retry-After": "1"},
        )
    if _is_unstorable_text(exc):
        # Bad input, not a server fault: the field types should refuse it first (and name the
        # field); this keeps any text field that slips through from becoming a 500.
        message = "text contains characters that cannot be stored (unpaired UTF-16 surrogates)"
        return problem_response(
            422, message, slug=ValidationFailed.slug, title=ValidationFailed.title, errors=[FieldError("body", message)]
        )
    if not is_database_unavailable(exc):
        raise exc
    log.warning("database unavailable", error=type(exc).__name__)
    return render(DatabaseUnavailable())


def install_database_error_handler(app: Starlette) -> None:
    import sqlalchemy.exc as sa_exc

    for exc_type in (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        app.add_exception_handler(exc_type, _database_error)
