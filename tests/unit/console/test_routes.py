"""Every route of the console names the permission it needs (console.web.requires), except the few public
ones; and every POST is among them, so none escapes the CSRF and role checks."""

from fastapi.routing import APIRoute

from console import operations
from console.screens import SCREENS

PUBLIC = {
    ("GET", "/signin"),
    ("POST", "/signin"),
    ("POST", "/language"),
    ("GET", "/healthz"),
    ("GET", "/livez"),
    ("GET", "/status/{token}"),  # the end customer's status page: the signed link is the permission
}


def permission_of(route: APIRoute):
    for dependency in route.dependant.dependencies:
        if hasattr(dependency.call, "permission"):
            return dependency.call.permission
    return None


def test_every_route_but_the_public_ones_requires_a_permission():
    # The routers app.py includes: the operations' and every screen's.
    routes = [r for router in (operations.router, *(s.router for s in SCREENS)) for r in router.routes]
    routes = [r for r in routes if isinstance(r, APIRoute)]
    assert routes
    for route in routes:
        for method in route.methods - {"HEAD"}:
            if (method, route.path) in PUBLIC:
                continue
            assert permission_of(route) is not None, f"{method} {route.path} declares no permission"
    assert {(m, r.path) for r in routes for m in r.methods} >= PUBLIC


def test_the_screens_are_found_and_no_two_routes_share_a_path():
    assert {s.__name__.rsplit(".", 1)[1] for s in SCREENS} >= {"signin", "today", "accounts"}
    routes = [r for router in (operations.router, *(s.router for s in SCREENS)) for r in router.routes]
    seen: dict[tuple[str, str], str] = {}
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        for method in route.methods:
            key = (method, route.path)
            assert key not in seen, (
                f"{method} {route.path} in two screens: {seen[key]} and {route.endpoint.__module__}"
            )
            seen[key] = route.endpoint.__module__
