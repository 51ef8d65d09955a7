"""FastAPI dependencies: the current principal and per-route permission checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crm.auth.permissions import Action, Resource, Scope, scope_for
from crm.auth.tokens import Principal, TokenVerifier
from crm.errors import Forbidden, Unauthorized
from crm.log import user_id_var

# auto_error=False: we render the 401 ourselves, as problem+json with WWW-Authenticate.
_bearer = HTTPBearer(auto_error=False, description="Access token issued by the Auth Service")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        if request.headers.get("authorization"):
            raise Unauthorized("Authorization header must be `Bearer <token>`", error=None)
        raise Unauthorized("missing bearer token", error=None)
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = await verifier.verify(credentials.credentials)
    user_id_var.set(str(principal.user_id))
    return principal


CurrentUser = Annotated[Principal, Depends(current_principal)]


@dataclass(frozen=True, slots=True)
class Grant:
    """A principal together with how far the checked permission reaches."""

    principal: Principal
    scope: Scope

    @property
    def user_id(self) -> UUID:
        return self.principal.user_id


def require(resource: Resource, action: Action) -> Callable[[Principal], Awaitable[Grant]]:
    async def check(principal: CurrentUser) -> Grant:
        scope = scope_for(principal.role, resource, action)
        if scope is None:
            raise Forbidden(f"role {principal.role or '(none)'!r} may not {action} {resource}")
        return Grant(principal, scope)

    return check
