"""The matrix app in Starlette, the stack added with ``app.add_middleware``."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .matrix_common import INSPECT_PATH, big_payload, inspect_data, install_sdk, stack

install_sdk()


async def index(request: Request) -> JSONResponse:
    return JSONResponse(big_payload())


async def item(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["item_id"]})


async def counter(request: Request) -> JSONResponse:
    request.session["count"] = request.session.get("count", 0) + 1
    return JSONResponse({"count": request.session["count"]})


async def limited(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def boom(request: Request) -> JSONResponse:
    raise RuntimeError("boom")


async def form(request: Request) -> JSONResponse:
    return JSONResponse({"method": request.method})


async def inspect(request: Request) -> JSONResponse:
    return JSONResponse(inspect_data())


app = Starlette(
    routes=[
        Route("/", index),
        Route("/items/{item_id:int}", item),
        Route("/counter", counter),
        Route("/limited", limited),
        Route("/boom", boom),
        Route("/form", form, methods=["GET", "POST"]),
        Route(INSPECT_PATH, inspect),
    ]
)
# The last added is the outermost, so add them innermost first.
for cls, options in reversed(stack()):
    app.add_middleware(cls, **options)
