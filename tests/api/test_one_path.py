"""Every endpoint is served one way: by its declaration in crm.api, with nothing answering beside it."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Match, Route

from crm.api.endpoint import Endpoint
from crm.api.routing import ShapeRouter, _key
from crm.main import ENDPOINTS, create_app
from crm.middleware import RequestContextMiddleware
from crm.observability.metrics import RequestMetrics
from tests.auth.support import make_settings
from tests.conftest import TEST_JWT_SECRET
from tests.test_operations import unreachable_urls

DOCUMENTATION = {"/openapi.json", "/docs"}


def test_every_route_is_a_declared_endpoint(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET), database_url=unreachable_urls()[0])
    routes = [route for route in app.routes if isinstance(route, Route)]
    assert len(routes) == len(app.routes), "only plain routes: no mounts, no second router"
    declared = {(e.method, e.path) for e in ENDPOINTS}
    served: set[tuple[str, str]] = set()
    for route in routes:
        if route.path in DOCUMENTATION:
            continue
        # The route's application is the endpoint layer's, made from one declaration.
        endpoint = getattr(route.app, "endpoint", None)
        assert isinstance(endpoint, Endpoint), route.path
        served |= {(m, route.path) for m in route.methods or () if m != "HEAD"}
    assert served == declared
    assert len(ENDPOINTS) == len(declared), "an endpoint declared twice"


def test_no_middleware_answers_requests_itself(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET, cors_origins="https://staff.example")
    app = create_app(settings, database_url=unreachable_urls()[0])
    # Only the request metrics (they count), the request context (ids, limits, access log) and CORS
    # sit in front of the routes.
    assert [m.cls for m in app.user_middleware] == [RequestMetrics, RequestContextMiddleware, CORSMiddleware]


def test_each_endpoint_is_found_by_its_own_path(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, jwt_secret=TEST_JWT_SECRET), database_url=unreachable_urls()[0])
    router = app.router
    assert isinstance(router, ShapeRouter)
    for endpoint in ENDPOINTS:
        path = re.sub(r"{[^}]+}", str(uuid.uuid4()), endpoint.path)
        scope = {"type": "http", "path": path, "method": endpoint.method, "root_path": ""}
        found = None
        # The first full match among the routes of the path's shape, as the router tries them.
        for route in router._grouped().get(_key(path), ()):
            match, _ = route.matches(scope)
            if match is Match.FULL:
                found = getattr(route.app, "endpoint", None)
                break
        assert found is endpoint, (endpoint.method, endpoint.path, found)
