"""Finding a request's route by its path's shape instead of trying every route in turn.

Starlette's router matches each route's regular expression in declaration order until one
fits, so a route declared late paid for every route before it. Here the routes are grouped
by the number of path segments and the first two of them (always literal in this service's
paths); a request tries only its group, in declaration order, with Starlette's own matching
(so 404, 405 and path parameters behave exactly as before).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

_Key = tuple[int, str, str]


def _key(path: str) -> _Key:
    segments = path.split("/")
    return len(segments), segments[1] if len(segments) > 1 else "", segments[2] if len(segments) > 2 else ""


class ShapeRouter(Router):
    def __init__(self, routes: Sequence[BaseRoute], **options: Any) -> None:
        super().__init__(routes=list(routes), **options)
        self._groups: dict[_Key, list[BaseRoute]] | None = None

    def _grouped(self) -> dict[_Key, list[BaseRoute]]:
        """The groups, made at the first request (routes added until then are included)."""
        if self._groups is None:
            groups: dict[_Key, list[BaseRoute]] = {}
            for route in self.routes:
                if not isinstance(route, Route) or "{" in "/".join(route.path.split("/")[:3]):
                    raise TypeError(f"{route!r}: only plain routes whose first two segments are literal")
                groups.setdefault(_key(route.path), []).append(route)
            self._groups = groups
        return self._groups

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().app(scope, receive, send)
            return
        scope.setdefault("router", self)
        partial: tuple[BaseRoute, Scope] | None = None
        for route in self._grouped().get(_key(scope["path"]), ()):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial = (route, child_scope)
        if partial is not None:  # the path is served, not with this method: 405
            route, child_scope = partial
            scope["route"] = route
            scope.update(child_scope)
            await route.handle(scope, receive, send)
            return
        await self.default(scope, receive, send)
