"""Who is calling and what they may do: the bearer token, then the role's permission."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from starlette.types import Scope

from crm.auth.permissions import Action, Resource, scope_for
from crm.auth.permissions import Scope as GrantScope
from crm.auth.tokens import Principal, TokenVerifier
from crm.errors import Forbidden, Unauthorized
from crm.log import user_id_var


def bearer_token(scope: Scope) -> str:
    """The token of `Authorization: Bearer <token>`; 401 when there is none."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = bytes(value).decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("Authorization header must be `Bearer <token>`", error=None)
            return token.strip()
    raise Unauthorized("missing bearer token", error=None)


async def authenticate(scope: Scope, verifier: TokenVerifier) -> Principal:
    principal = await verifier.verify(bearer_token(scope))
    user_id_var.set(str(principal.user_id))
    return principal


@dataclass(frozen=True, slots=True)
class Grant:
    """A principal together with how far the checked permission reaches."""

    principal: Principal
    scope: GrantScope

    @property
    def user_id(self) -> UUID:
        return self.principal.user_id

    @property
    def own_only(self) -> UUID | None:
        """The user whose records the grant is limited to, or None when it reaches all of them."""
        return self.user_id if self.scope is GrantScope.own else None


def authorize(principal: Principal, resource: Resource, action: Action) -> Grant:
    scope = scope_for(principal.role, resource, action)
    if scope is None:
        raise Forbidden(f"role {principal.role or '(none)'!r} may not {action} {resource}")
    return Grant(principal, scope)
