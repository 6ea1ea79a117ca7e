"""Apps for the rate-limit routing tests (tests/test_ratelimit_routing.py).

The same five endpoints in Starlette, FastAPI and Litestar (Django's are in
``ratelimit_routing_django.py``), behind ``RateLimitMiddleware`` applied the
way each framework's users apply it, with one rule per way of walking around
a limit: method case (``/login``, POST), HEAD (``/page``, GET), path
spellings (``/limited``) and a route template (``/items/{item_id}``).

Every handler counts its runs per client (the ``X-Client`` header, which is
also the rate-limit key) and marks its answer with ``X-Handler``; ``/runs``
reports the counts of the asking client, so a test over a real server can
compare how often each handler ran with the limit.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from fastapi.responses import JSONResponse as FastAPIJSON
from litestar import Litestar, Response, get, head, post
from litestar import Request as LitestarRequest
from litestar.middleware import DefineMiddleware
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from asgi_kit.ratelimit import MemoryBackend, RateLimitMiddleware, Rule, header

LIMIT = 3
KEY = header("x-client")
RUNS: Counter[tuple[str, str]] = Counter()
# One header list for every answer of a handler, as real apps reuse them.
HANDLER_HEADER = "X-Handler"


def rules(item_route: str) -> list[Rule]:
    """The rules every framework's app is limited by (``item_route`` in its syntax)."""
    return [
        Rule(f"{LIMIT}/minute", path="/login", methods={"POST"}, key=KEY),
        Rule(f"{LIMIT}/minute", path="/page", methods={"GET"}, key=KEY),
        Rule(f"{LIMIT}/minute", path="/limited", key=KEY),
        Rule(f"{LIMIT}/minute", route=item_route, key=KEY),
    ]


def ran(client: str, name: str) -> None:
    RUNS[(client, name)] += 1


def runs_of(client: str) -> dict[str, int]:
    return {name: n for (c, name), n in RUNS.items() if c == client}


# ------------------------------------------------------------------ Starlette


def _starlette() -> Any:
    def endpoint(name: str) -> Any:
        async def handler(request: Request) -> JSONResponse:
            ran(request.headers.get("x-client", ""), name)
            return JSONResponse({"handler": name}, headers={HANDLER_HEADER: name})

        return handler

    async def runs(request: Request) -> JSONResponse:
        return JSONResponse(runs_of(request.headers.get("x-client", "")))

    app = Starlette(
        routes=[
            Route("/login", endpoint("login"), methods=["POST"]),
            Route("/page", endpoint("page"), methods=["GET"]),
            Route("/limited", endpoint("limited")),
            Route("/items/{item_id:int}", endpoint("item")),
            Route("/runs", runs),
        ]
    )
    app.add_middleware(RateLimitMiddleware, rules=rules("/items/{item_id:int}"))
    return app


def _fastapi() -> Any:
    app = FastAPI()

    def answer(request: FastAPIRequest, name: str) -> FastAPIJSON:
        ran(request.headers.get("x-client", ""), name)
        return FastAPIJSON({"handler": name}, headers={HANDLER_HEADER: name})

    @app.post("/login")
    async def login(request: FastAPIRequest) -> FastAPIJSON:
        return answer(request, "login")

    @app.api_route("/page", methods=["GET", "HEAD"])
    async def page(request: FastAPIRequest) -> FastAPIJSON:
        return answer(request, "page")

    @app.get("/limited")
    async def limited(request: FastAPIRequest) -> FastAPIJSON:
        return answer(request, "limited")

    @app.get("/items/{item_id}")
    async def item(item_id: int, request: FastAPIRequest) -> FastAPIJSON:
        return answer(request, "item")

    @app.get("/runs")
    async def runs(request: FastAPIRequest) -> dict[str, int]:
        return runs_of(request.headers.get("x-client", ""))

    app.add_middleware(RateLimitMiddleware, rules=rules("/items/{item_id}"))
    return app


def _litestar() -> Any:
    def answer(request: LitestarRequest[Any, Any, Any], name: str) -> Response[dict[str, str]]:
        ran(request.headers.get("x-client", ""), name)
        return Response({"handler": name}, headers={HANDLER_HEADER: name})

    @post("/login", status_code=200)
    async def login(request: LitestarRequest[Any, Any, Any]) -> Response[dict[str, str]]:
        return answer(request, "login")

    @get("/page")
    async def page(request: LitestarRequest[Any, Any, Any]) -> Response[dict[str, str]]:
        return answer(request, "page")

    @head("/page")
    async def page_head(request: LitestarRequest[Any, Any, Any]) -> Response[None]:
        ran(request.headers.get("x-client", ""), "page")
        return Response(None, headers={HANDLER_HEADER: "page"})

    @get("/limited")
    async def limited(request: LitestarRequest[Any, Any, Any]) -> Response[dict[str, str]]:
        return answer(request, "limited")

    @get("/items/{item_id:int}")
    async def item(
        item_id: int, request: LitestarRequest[Any, Any, Any]
    ) -> Response[dict[str, str]]:
        return answer(request, "item")

    @get("/runs")
    async def runs(request: LitestarRequest[Any, Any, Any]) -> dict[str, int]:
        return runs_of(request.headers.get("x-client", ""))

    # Litestar builds middleware per route handler: share one backend.
    options = {"rules": rules("/items/{item_id:int}"), "backend": MemoryBackend()}
    return Litestar(
        route_handlers=[login, page, page_head, limited, item, runs],
        middleware=[DefineMiddleware(RateLimitMiddleware, **options)],
    )


starlette_app = _starlette()
fastapi_app = _fastapi()
litestar_app = _litestar()
