"""The CRM's own role -> permission table (the Auth Service defines no CRM permissions)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class Scope(StrEnum):
    """How far a granted permission reaches."""

    all = "all"
    own = "own"  # only records the user authored (interactions.user_id)


Resource = Literal["customers", "contacts", "interactions", "history", "trash", "events", "event_relay", "webhooks"]
# "erase": erasure on request (crm.erasure), admins only. Restoring from the trash needs
# "delete" on the record: whoever may delete a record may take its delete back.
Action = Literal["read", "create", "update", "delete", "erase"]

_FULL: dict[Action, Scope] = dict.fromkeys(("read", "create", "update", "delete"), Scope.all)

PERMISSIONS: dict[str, dict[Resource, dict[Action, Scope]]] = {
    # History is append-only: "read" is the only action it has. A customer's own history is
    # read with "customers" "read"; the global list (every change by anyone) needs this.
    # The trash listing shows each caller what they could restore (crm.trash.service.visible,
    # from the "delete" scopes here): "own" lets an employee list at all.
    # Events (the pull feed) are every change by anyone, as the global history is; the relay's
    # status (backlog, leadership) is an operator's view: admins only. Webhook subscriptions send
    # the customers' data to outside URLs: admins only.
    "admin": {
        "customers": {**_FULL, "erase": Scope.all},
        "contacts": _FULL,
        "interactions": _FULL,
        "history": {"read": Scope.all},
        "trash": {"read": Scope.all},
        "events": {"read": Scope.all},
        "event_relay": {"read": Scope.all},
        "webhooks": _FULL,
    },
    "manager": {
        "customers": _FULL,
        "contacts": _FULL,
        "interactions": _FULL,
        "history": {"read": Scope.all},
        "trash": {"read": Scope.all},
        "events": {"read": Scope.all},
    },
    "employee": {
        "customers": {"read": Scope.all, "create": Scope.all, "update": Scope.all},
        "contacts": {"read": Scope.all, "create": Scope.all, "update": Scope.all},
        "interactions": {
            "read": Scope.all,
            "create": Scope.all,
            "update": Scope.own,
            "delete": Scope.own,
        },
        "trash": {"read": Scope.own},
    },
}


def scope_for(role: str, resource: Resource, action: Action) -> Scope | None:
    """The scope `role` has for `action` on `resource`, or None if it has none."""
    return PERMISSIONS.get(role, {}).get(resource, {}).get(action)
