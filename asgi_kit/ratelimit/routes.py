"""Which route template a request is headed for, for ``Rule(route=...)``.

A rate limiter usually runs *outside* the framework's router, so the route is
not in the scope yet.  :class:`RouteResolver` answers in this order, and is
only built by the middleware when a ``route=`` rule exists:

1. the scope, when something already routed the request
   (:func:`asgi_kit._http.route_template`: Litestar's ``path_template``,
   Starlette's ``scope["route"]`` at the router level, an integration's
   ``scope["asgi_kit.route"]``);
2. a Starlette/FastAPI router found inside the wrapped app (FastAPI's
   ``add_middleware`` stack ends in one): its routes are matched the way the
   router will match them, mounts included, once per request;
3. a Litestar application wrapped by the middleware (its router's own cached
   routing call);
4. Django's URL resolver, when the middleware runs in asgi_kit's Django
   adapter (``MIDDLEWARE``), which calls it before Django resolves the URL.

Anything else (a raw ASGI app, a router the resolver cannot see) gives None,
and a ``route=`` rule then does not apply; the middleware logs that once.
"""

from __future__ import annotations

import sys
from typing import Any

from asgi_kit._http import route_template
from asgi_kit.types import Scope

__all__ = ["RouteResolver"]

# How deep to look for the router through middleware wrapping it (``.app``).
_MAX_DEPTH = 64


def _find_router(app: Any) -> tuple[str, Any]:
    """What routes requests behind ``app``: ``("starlette", router)``,
    ``("litestar", asgi_router)``, ``("django", None)`` (asgi_kit's Django
    adapter: Django resolves the URL after the middleware) or ``("", None)``."""
    try:
        from starlette.routing import Router
    except ImportError:  # Starlette is not installed: no Starlette router to find.
        Router = None  # type: ignore[assignment,misc]
    django = sys.modules.get("asgi_kit.contrib.django._exchange")
    view_app = getattr(django, "view_app", None)
    seen: set[int] = set()
    for _ in range(_MAX_DEPTH):
        if app is None or id(app) in seen:
            break
        seen.add(id(app))
        if view_app is not None and app is view_app:
            return "django", None
        if type(app).__module__.startswith("litestar") and hasattr(app, "asgi_router"):
            return "litestar", app.asgi_router
        if Router is not None:
            if isinstance(app, Router):
                return "starlette", app
            router = getattr(app, "router", None)  # a Starlette/FastAPI application
            if isinstance(router, Router):
                return "starlette", router
        app = getattr(app, "app", None)
    return "", None


def _starlette_route(routes: Any, scope: Scope) -> str | None:
    from starlette.routing import Match, Mount

    partial: Any = None
    partial_scope: dict[str, Any] = {}
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            break
        if match is Match.PARTIAL and partial is None:
            partial, partial_scope = route, child
    else:
        if partial is None:
            return None
        route, child = partial, partial_scope
    inner = {**scope, **child, "route": route}
    if isinstance(route, Mount):
        sub = getattr(route, "routes", None)
        if sub:
            # A routing sub-app: the template is that of its own route.
            return _starlette_route(sub, inner)
    return route_template(inner)


def _litestar_route(router: Any, scope: Scope) -> str | None:
    from litestar.utils.path import normalize_path

    path = scope.get("path")
    if not isinstance(path, str):
        return None
    root = scope.get("root_path") or ""
    if isinstance(root, str) and root:
        path = path.split(root, maxsplit=1)[-1]  # as Litestar's own router does
    try:
        # Litestar's cached routing call: what its router will run for this request.
        routed = router.handle_routing(path=normalize_path(path), method=scope.get("method"))
    except Exception:  # NotFound, MethodNotAllowed...: no route
        return None
    template = routed[4]
    return template if isinstance(template, str) and template else None


def _django_route(scope: Scope) -> str | None:
    from django.urls import resolve  # type: ignore[import-untyped]

    from asgi_kit._routes import django_route as route_of
    from asgi_kit.contrib.django._exchange import EXCHANGE_KEY

    exchange = scope.get(EXCHANGE_KEY)
    request = getattr(exchange, "request", None)
    if request is None:
        return None
    try:
        # The URLconf Django's handler will use: a middleware may set request.urlconf.
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Exception:  # Resolver404, or a URLconf that fails to import: no route.
        return None

    class _Resolved:
        resolver_match = match

    return route_of(_Resolved(), scope)


class RouteResolver:
    """Resolves ``scope`` to the route template its request will be routed to."""

    __slots__ = ("_app", "_kind", "_router")

    def __init__(self, app: Any) -> None:
        self._app = app
        self._kind: str | None = None
        self._router: Any = None

    def __call__(self, scope: Scope) -> str | None:
        template = route_template(scope)
        if template is not None:
            return template
        if self._kind is None:
            # Looked up on the first request: the app's routes are final by then.
            self._kind, self._router = _find_router(self._app)
        if self._kind == "starlette":
            return _starlette_route(self._router.routes, scope)
        if self._kind == "litestar":
            return _litestar_route(self._router, scope)
        if self._kind == "django":
            return _django_route(scope)
        return None

    @property
    def kind(self) -> str | None:
        """``"starlette"``, ``"litestar"``, ``"django"``, ``""`` (scope only) or None (not yet)."""
        return self._kind
