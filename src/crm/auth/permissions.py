"""The CRM's own role -> permission table (the Auth Service defines no CRM permissions)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class Scope(StrEnum):
    """How far a granted permission reaches."""

    all = "all"
    own = "own"  # only records the user authored (interactions.user_id)


Resource = Literal["customers", "contacts", "interactions", "history", "webhooks"]
Action = Literal["read", "create", "update", "delete"]

_FULL: dict[Action, Scope] = dict.fromkeys(("read", "create", "update", "delete"), Scope.all)

PERMISSIONS: dict[str, dict[Resource, dict[Action, Scope]]] = {
    # History is append-only: "read" is the only action it has. A customer's own history is
    # read with "customers" "read"; the global list (every change by anyone) needs this.
    # Webhook subscriptions send the customers' data to outside URLs: admins only.
    "admin": {
        "customers": _FULL,
        "contacts": _FULL,
        "interactions": _FULL,
        "history": {"read": Scope.all},
        "webhooks": _FULL,
    },
    "manager": {"customers": _FULL, "contacts": _FULL, "interactions": _FULL, "history": {"read": Scope.all}},
    "employee": {
        "customers": {"read": Scope.all, "create": Scope.all, "update": Scope.all},
        "contacts": {"read": Scope.all, "create": Scope.all, "update": Scope.all},
        "interactions": {
            "read": Scope.all,
            "create": Scope.all,
            "update": Scope.own,
            "delete": Scope.own,
        },
    },
}


def scope_for(role: str, resource: Resource, action: Action) -> Scope | None:
    """The scope `role` has for `action` on `resource`, or None if it has none."""
    return PERMISSIONS.get(role, {}).get(resource, {}).get(action)
