"""Framework route knowledge: which route template a request matched.

Every observer (tracing's ``http.route`` and span name, the metrics ``route``
label, the access log's ``route`` field) asks :func:`route_template` after
the app routed; integrations that know the route themselves (the Django
adapters, a user's router) store it under :data:`ROUTE_KEY`.
"""

from __future__ import annotations

from typing import Any

from .types import Scope

__all__ = ["ROUTE_KEY", "django_route", "route_template"]

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
