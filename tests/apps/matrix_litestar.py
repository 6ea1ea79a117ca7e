"""The matrix app in Litestar, the stack given as ``middleware=[DefineMiddleware(...)]``.

Litestar builds the middleware stack per route handler, *after* routing:

- a request no handler matches never reaches the middleware, so
  ``MetricsMiddleware(metrics_path=...)`` cannot answer ``/metrics``; the
  scrape endpoint is ``metrics_app()`` mounted as an ASGI route instead;
- every handler gets its own middleware instances, so the rate limiter is
  given one shared ``MemoryBackend`` (otherwise each route counts apart);
- Litestar records the route template in ``scope["path_template"]``, which
  asgi_kit reads like Starlette's ``scope["route"]``.
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, asgi, get, route
from litestar.middleware import DefineMiddleware

from asgi_kit import MemoryBackend, metrics_app
from asgi_kit.types import Receive, Scope, Send

from .matrix_common import INSPECT_PATH, big_payload, inspect_data, install_sdk, stack

install_sdk()


@get("/")
async def index() -> dict[str, Any]:
    return big_payload()


@get("/items/{item_id:int}")
async def item(item_id: int) -> dict[str, int]:
    return {"id": item_id}


@get("/counter")
async def counter(request: Request[Any, Any, Any]) -> dict[str, int]:
    # Litestar's request.session is its own; asgi_kit's lives in the scope.
    session = request.scope["session"]  # type: ignore[typeddict-item]
    session["count"] = session.get("count", 0) + 1
    return {"count": session["count"]}


@get("/limited")
async def limited() -> dict[str, bool]:
    return {"ok": True}


@get("/boom")
async def boom() -> None:
    raise RuntimeError("boom")


@route("/form", http_method=["GET", "POST"], status_code=200)
async def form(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {"method": request.method}


@get(INSPECT_PATH)
async def inspect() -> dict[str, Any]:
    return inspect_data()


_scrape = metrics_app()


@asgi("/metrics")
async def metrics(scope: Scope, receive: Receive, send: Send) -> None:
    await _scrape(scope, receive, send)


overrides: dict[str, dict[str, Any]] = {
    "MetricsMiddleware": {"metrics_path": None},
    "RateLimitMiddleware": {"backend": MemoryBackend()},
}

# Litestar's middleware list is outermost first.
app = Litestar(
    route_handlers=[index, item, counter, limited, boom, form, inspect, metrics],
    middleware=[DefineMiddleware(cls, **options) for cls, options in stack(overrides)],
)
