"""Route knowledge in asgi_kit._routes: the template a request matched, per framework."""

from __future__ import annotations

from typing import Any

from asgi_kit._http import route_template as reexported
from asgi_kit._routes import (
    ANSWERED_BY_KEY,
    answered_early,
    django_route,
    mark_answered,
    resolve_route,
    route_template,
)

from ._support.asgi import call_http


async def test_route_template_from_fastapi_and_mounts() -> None:
    from fastapi import FastAPI
    from starlette.routing import Mount

    seen: list[str | None] = []
    app = FastAPI()
    sub = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @sub.get("/users/{name}")
    async def user(name: str) -> dict[str, str]:
        return {"name": name}

    app.router.routes.append(Mount("/v2", app=sub))

    async def outer(scope: dict[str, object], receive: object, send: object) -> None:
        await app(scope, receive, send)  # type: ignore[arg-type]
        seen.append(route_template(scope))

    assert (await call_http(outer, path="/items/42")).status == 200
    assert (await call_http(outer, path="/v2/users/bob")).status == 200
    assert (await call_http(outer, path="/nope")).status == 404
    assert seen == ["/items/{item_id}", "/v2/users/{name}", None]


async def test_route_template_starlette_mount_of_plain_app() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    seen: list[str | None] = []
    app = Starlette(routes=[Mount("/static", app=_plain_app)])

    async def outer(scope: dict[str, object], receive: object, send: object) -> None:
        await app(scope, receive, send)  # type: ignore[arg-type]
        seen.append(route_template(scope))

    assert (await call_http(outer, path="/static/css/site.css")).status == 200
    assert (await call_http(outer, path="/static/x", root_path="/api")).status == 200
    assert seen == ["/static/{path}", "/api/static/{path}"]


async def _plain_app(scope: dict[str, object], receive: object, send: object) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"file"})  # type: ignore[operator]


def test_route_template_explicit_key_and_strings() -> None:
    assert route_template({"asgi_kit.route": "/a/<int:pk>", "route": "/x"}) == "/a/<int:pk>"
    assert route_template({"route": "/plain"}) == "/plain"
    assert route_template({"route": object()}) is None
    assert route_template({}) is None
    assert route_template({"path_template": "/api/items/{item_id}"}) == "/api/items/{item_id}"
    assert route_template({"path_template": ""}) is None


def test_http_keeps_exporting_route_template() -> None:
    assert reexported is route_template


class _Match:
    def __init__(self, route: str | None) -> None:
        self.route = route


class _Request:
    def __init__(self, route: str | None) -> None:
        self.resolver_match = _Match(route)


def test_django_route_from_path_and_re_path_patterns() -> None:
    scope: dict[str, Any] = {"root_path": ""}
    assert django_route(_Request("items/<int:pk>"), scope) == "/items/<int:pk>"
    assert django_route(_Request("^articles/(?P<year>[0-9]{4})/$"), scope) == (
        "/articles/(?P<year>[0-9]{4})/"
    )
    assert django_route(_Request("^raw\\Z"), scope) == "/raw"
    assert django_route(_Request("items/"), {"root_path": "/api/"}) == "/api/items/"
    assert django_route(_Request(None), scope) is None
    assert django_route(object(), scope) is None


# ----------------------------------------------------------------- answered before routing


def _fastapi_app() -> Any:
    from fastapi import FastAPI
    from starlette.routing import Mount

    app = FastAPI()
    sub = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @sub.post("/users/{name}")
    async def user(name: str) -> dict[str, str]:
        return {"name": name}

    app.router.routes.append(Mount("/v2", app=sub))
    app.router.routes.append(Mount("/static", app=_plain_app))
    return app


def test_resolve_route_walks_the_router_without_calling_endpoints() -> None:
    app = _fastapi_app()

    def scope(method: str, path: str) -> dict[str, Any]:
        return {"type": "http", "method": method, "path": path, "root_path": "", "app": app}

    assert resolve_route(scope("GET", "/items/3")) == "/items/{item_id}"
    # A preflight: the right path, another method (a partial match).
    assert resolve_route(scope("OPTIONS", "/items/3")) == "/items/{item_id}"
    assert resolve_route(scope("OPTIONS", "/v2/users/bob")) == "/v2/users/{name}"
    assert resolve_route(scope("GET", "/static/site.css")) == "/static/{path}"
    assert resolve_route(scope("GET", "/nothing")) is None
    assert resolve_route(scope("GET", "/v2/nothing")) is None
    assert resolve_route({"type": "http", "path": "/items/3"}) is None
    assert resolve_route({"type": "http", "path": "/x", "app": object()}) is None


def test_answered_early_needs_a_name_or_a_router_that_never_ran() -> None:
    app = _fastapi_app()
    assert answered_early({}) is None
    assert answered_early({"app": app}) == ""
    assert answered_early({"app": app, "router": app.router}) is None
    scope: dict[str, Any] = {"app": app, "router": app.router}
    mark_answered(scope, "csrf")
    assert answered_early(scope) == "csrf"
    assert scope[ANSWERED_BY_KEY] == "csrf"
