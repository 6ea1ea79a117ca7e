"""Framework route knowledge: which route template a request matched.

Every observer (tracing's ``http.route`` and span name, the metrics ``route``
label, the access log's ``route`` field) asks :func:`route_template` after
the app routed; integrations that know the route themselves (the Django
adapters, a user's router) store it under :data:`ROUTE_KEY`.
"""

from __future__ import annotations

from typing import Any

from .types import Scope

__all__ = [
    "ANSWERED_BY_KEY",
    "ROUTE_KEY",
    "ROUTE_LOOKUP_KEY",
    "answered_early",
    "django_route",
    "mark_answered",
    "resolve_route",
    "route_template",
]

#: Scope key where an integration (the Django adapter, a user's router) can
#: store the matched route template, e.g. ``"/items/<int:pk>"``.
ROUTE_KEY = "asgi_kit.route"


def route_template(scope: Scope) -> str | None:
    """The matched route template for ``scope``, or None when unknown.

    Read after the app has routed the request (at ``http.response.start`` or
    when the app returns).  Sources, in order: ``scope["asgi_kit.route"]``
    (set by asgi_kit's Django adapter or any integration), then
    ``scope["route"]`` as Starlette/FastAPI set it (its ``path_format``,
    prefixed with the mount's ``root_path``), or a plain string there, then
    Litestar's ``scope["path_template"]``.
    """
    explicit = scope.get(ROUTE_KEY)
    if isinstance(explicit, str) and explicit:
        return explicit
    route = scope.get("route")
    if route is None:
        # Litestar names the matched template (router prefixes included).
        template = scope.get("path_template")
        return template if isinstance(template, str) and template else None
    if isinstance(route, str):
        return route or None
    template = getattr(route, "path_format", None)
    if not isinstance(template, str):
        template = getattr(route, "path", None)
        if not isinstance(template, str):
            return None
    root = scope.get("root_path") or ""
    if root and isinstance(root, str):
        own = getattr(route, "path", None)
        if type(route).__name__ == "Mount" and isinstance(own, str) and root.endswith(own):
            # A Mount answering itself (static files, a non-routing sub-app):
            # its path_format already carries the prefix the match appended.
            root = root[: len(root) - len(own)]
        template = root.rstrip("/") + template
    return template or "/"


def django_route(request: Any, scope: Scope) -> str | None:
    """``request.resolver_match.route`` as an absolute template (``/items/<int:pk>``)."""
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    if not isinstance(route, str):
        return None
    # re_path() routes are regexes: drop the anchors, keep the pattern.
    if route.startswith("^"):
        route = route[1:]
    if route.endswith("\\Z"):
        route = route[:-2]
    elif route.endswith("$"):
        route = route[:-1]
    root = scope.get("root_path") or ""
    prefix = root.rstrip("/") if isinstance(root, str) else ""
    return f"{prefix}/{route.lstrip('/')}"


# --------------------------------------------------------------------------- answered early

#: Scope key where a middleware that answers a request itself (a 429, a CORS
#: preflight, a CSRF refusal) names itself, e.g. ``"ratelimit"``, before it
#: sends its response.  Metrics label such requests ``<name>`` when the route
#: they were headed for cannot be known (see :func:`resolve_route`).
ANSWERED_BY_KEY = "asgi_kit.answered_by"

# Bound on Mount nesting followed when resolving: real apps nest two or three.
_MAX_DEPTH = 8


#: Scope key where an integration whose router cannot be walked from the scope
#: (the Django adapters) puts ``lookup(scope) -> str | None``: the route
#: template the request would match.  It is removed once the framework's own
#: routing runs, so its presence means "answered before routing".
ROUTE_LOOKUP_KEY = "asgi_kit.route_lookup"


def mark_answered(scope: Scope, name: str) -> None:
    """Record that the middleware ``name`` answered the request without the app."""
    scope[ANSWERED_BY_KEY] = name


def answered_early(scope: Scope) -> str | None:
    """Who answered a request the app's router never saw, or None when it did see it.

    The name a middleware gave with :func:`mark_answered`; ``""`` when no
    middleware named itself but the framework's router visibly never ran
    (Starlette and FastAPI set ``scope["router"]`` when they route, and
    ``scope["app"]`` before their middleware stack runs; the Django adapters
    offer a :data:`ROUTE_LOOKUP_KEY` until Django's chain runs).
    """
    name = scope.get(ANSWERED_BY_KEY)
    if isinstance(name, str) and name:
        return name
    app = scope.get("app")
    if app is not None and "router" not in scope and hasattr(app, "router"):
        return ""
    if ROUTE_LOOKUP_KEY in scope:
        return ""  # an integration's router (Django's) never saw it
    return None


def resolve_route(scope: Scope) -> str | None:
    """The route template a request was headed for, asked of the framework's router.

    For requests answered before the router ran: walks the routes of the
    Starlette/FastAPI app in ``scope["app"]`` as its router would (a full
    match wins, else the first partial one, i.e. the right path with another
    method, as a CORS preflight is), into mounted routers, without calling
    any endpoint.  None when no route matches or the app has no such router.
    It costs what routing the request would have cost, and runs only for
    requests a middleware answered.  An integration's own lookup
    (:data:`ROUTE_LOOKUP_KEY`, Django's URL resolver) is asked first.
    """
    lookup = scope.get(ROUTE_LOOKUP_KEY)
    if lookup is not None:
        try:
            found = lookup(scope)
        except Exception:  # an integration's lookup must never fail the request
            return None
        return found if isinstance(found, str) and found else None
    router = getattr(scope.get("app"), "router", None)
    routes = getattr(router, "routes", None)
    if not routes:
        return None
    return _match_routes(routes, scope, 0)


def _match_routes(routes: Any, scope: Scope, depth: int) -> str | None:
    partial: tuple[Any, Scope] | None = None
    for route in routes:
        try:
            match, child = route.matches(scope)
        except Exception:  # a route that cannot read this scope: not this one
            continue
        level = getattr(match, "value", 0)  # Starlette's Match: NONE=0, PARTIAL=1, FULL=2
        if level == 2:
            return _template_of(route, {**scope, **child}, depth)
        if level == 1 and partial is None:
            partial = (route, {**scope, **child})
    if partial is not None:
        return _template_of(partial[0], partial[1], depth)
    return None


def _template_of(route: Any, scope: Scope, depth: int) -> str | None:
    inner = getattr(route, "routes", None)
    if inner and depth < _MAX_DEPTH:
        # A Mount of a router: the route inside it, as the inner router would pick.
        return _match_routes(inner, scope, depth + 1)
    scope["route"] = route
    scope.pop(ROUTE_KEY, None)
    return route_template(scope)
