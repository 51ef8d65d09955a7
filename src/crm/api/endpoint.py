"""Endpoints declared once: what a route takes, who may call it, what it needs, what it answers.

Every route of the service is one `Endpoint`: its method and path, its parameters (one pydantic
model: path, query and header fields), its body model, the permission it needs, the database
access it needs, and what it answers. From that one declaration come both the request handling
below and the route's OpenAPI entry (crm.api.openapi). There is no second way to reach a handler.

A request runs through these steps, each written once here:
1. authenticate the bearer token (401), count it against the caller's rate limit (429), check the
   role's permission (403) — before anything is parsed or any connection is taken, so a refused
   request costs no database work;
2. read the parameters and the body into their models (400/415/422 naming the field);
3. take what the endpoint declared it needs: a read connection (one autocommitted statement), or
   a transaction that is committed *before* the answer is sent, so no client sees a 2xx for a
   write that then failed to commit;
4. call the handler with a `Call` and send the Response it returns.

Errors are raised, never rendered here: the application's one handler (crm.errors) renders them.

Why not FastAPI's routing: measured in-process, its dependency solving cost about as much per
request as reading a customer does, which had led to the hottest routes being answered by a
second implementation beside it. This layer does only what the service's routes use.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import asyncpg
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import State
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from crm.api.inputs import ParamSpec, read_body
from crm.auth.guard import Grant, authenticate, authorize
from crm.auth.permissions import Action, Resource
from crm.config import Settings
from crm.db.reads import read_connection
from crm.db.transaction import request_transaction
from crm.ratelimit.guard import enforce_rate_limit

P = TypeVar("P", bound=BaseModel)
B = TypeVar("B", bound=BaseModel | None)

# What an endpoint needs from the database, taken after authorization:
# "read": a read-pool connection in autocommit, for answers that are one statement;
# "transaction": an ORM session whose transaction commits before the answer is sent;
# None: nothing, or the handler opens short sessions itself (routes that wait on another
# service must not hold a connection meanwhile).
Database = Literal["read", "transaction"] | None


class NoParams(BaseModel):
    """For endpoints that take no parameters (unknown query parameters are ignored)."""


@dataclass(slots=True)
class Call(Generic[P, B]):
    """One request to an endpoint, as its handler sees it."""

    scope: Scope
    params: P
    body: B
    grant: Grant | None
    state: State
    _session: AsyncSession | None = None
    _connection: asyncpg.Connection | None = None

    @property
    def session(self) -> AsyncSession:
        """The request's transaction (endpoints declared with database="transaction")."""
        if self._session is None:
            raise RuntimeError("this endpoint did not declare database='transaction'")
        return self._session

    @property
    def connection(self) -> asyncpg.Connection:
        """The request's read connection (endpoints declared with database="read")."""
        if self._connection is None:
            raise RuntimeError("this endpoint did not declare database='read'")
        return self._connection

    @property
    def user(self) -> Grant:
        """The authorized caller (every endpoint declared with a permission)."""
        if self.grant is None:
            raise RuntimeError("this endpoint declared no permission")
        return self.grant

    @property
    def path(self) -> str:
        path: str = self.scope["path"]
        return path

    def header(self, name: bytes) -> str | None:
        """A request header by its lower-case name."""
        for key, value in self.scope["headers"]:
            if key == name:
                return bytes(value).decode("latin-1")
        return None

    @property
    def settings(self) -> Settings:
        settings: Settings = self.state.settings
        return settings

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        maker: async_sessionmaker[AsyncSession] = self.state.sessionmaker
        return maker


Handler = Callable[[Call[Any, Any]], Awaitable[Response]]
_PATH_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)}")


@dataclass(frozen=True, slots=True)
class Answer:
    """What an endpoint answers on success, for its OpenAPI entry."""

    status: int = 200
    model: Any = None  # a pydantic model or a type pydantic can describe (list[Model]); None: no body
    media_type: str = "application/json"
    description: str = "Successful Response"
    headers: Mapping[str, str] = field(default_factory=dict)  # documented response headers: name -> description


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tags: tuple[str, ...]
    permission: tuple[Resource, Action] | None
    params: type[BaseModel]
    body: type[BaseModel] | None
    answer: Answer
    errors: Mapping[int | str, Mapping[str, Any]]
    database: Database
    description: str | None = None

    @property
    def path_names(self) -> frozenset[str]:
        return frozenset(_PATH_PARAM.findall(self.path))

    @property
    def operation_id(self) -> str:
        # Handlers of different features share names (list_for_customer): the tag tells them apart.
        return f"{self.tags[0]}_{self.handler.__name__}"

    def route(self) -> Route:
        """The Starlette route that serves this endpoint."""
        return Route(self.path, _Serve(self), methods=[self.method])


class _Serve:
    """The ASGI application of one endpoint (see the module doc for the steps)."""

    __slots__ = ("body", "database", "endpoint", "handler", "params", "permission")

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.handler = endpoint.handler
        self.permission = endpoint.permission
        self.params = ParamSpec.of(endpoint.params, endpoint.path_names)
        self.body = endpoint.body
        self.database = endpoint.database

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: State = scope["app"].state
        grant = None
        if self.permission is not None:
            principal = await authenticate(scope, state.token_verifier)
            await enforce_rate_limit(scope, state.rate_limiter, principal)
            grant = authorize(principal, *self.permission)
        params = self.params.read(scope, scope.get("path_params", {}))
        body = await read_body(scope, receive, self.body) if self.body is not None else None
        call: Call[Any, Any] = Call(scope, params, body, grant, state)
        if self.database is None:
            response = await self.handler(call)
        elif self.database == "read":
            settings: Settings = state.settings
            async with read_connection(state.read_pool, settings.db_pool_timeout) as connection:
                call._connection = connection
                response = await self.handler(call)
        else:
            async with request_transaction(scope, state.sessionmaker) as session:
                call._session = session
                response = await self.handler(call)
        await response(scope, receive, send)


class Routes:
    """The endpoints of one feature, declared with the decorators below."""

    def __init__(self, prefix: str = "", *, tag: str) -> None:
        self.prefix = prefix
        self.tag = tag
        self.endpoints: list[Endpoint] = []

    def endpoint(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        permission: tuple[Resource, Action] | None,
        errors: Mapping[int | str, Mapping[str, Any]],
        params: type[BaseModel] = NoParams,
        body: type[BaseModel] | None = None,
        answer: Answer | None = None,
        database: Database = None,
        description: str | None = None,
    ) -> Callable[[Handler], Handler]:
        def declare(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method=method,
                    path=self.prefix + path,
                    handler=handler,
                    summary=summary,
                    tags=(self.tag,),
                    permission=permission,
                    params=params,
                    body=body,
                    answer=answer or Answer(),
                    errors=errors,
                    database=database,
                    description=description,
                )
            )
            return handler

        return declare

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.endpoint("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.endpoint("POST", path, **options)

    def put(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.endpoint("PUT", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self.endpoint("DELETE", path, **options)
