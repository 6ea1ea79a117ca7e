"""The matrix app in FastAPI, the stack added with ``app.add_middleware``."""

from __future__ import annotations

import inspect as _inspect
from typing import Any

from fastapi import FastAPI, Request

from .matrix_common import INSPECT_PATH, big_payload, inspect_data, install_sdk, stack

install_sdk()

# FastAPI releases with built-in telemetry start their own SERVER span once a
# global SDK is installed; TracingMiddleware already makes one (docs/tracing.md).
_kwargs: dict[str, Any] = {}
if "telemetry" in _inspect.signature(FastAPI).parameters:
    _kwargs["telemetry"] = {"tracing": False}
app = FastAPI(**_kwargs)


@app.get("/")
async def index() -> dict[str, Any]:
    return big_payload()


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"id": item_id}


@app.get("/counter")
async def counter(request: Request) -> dict[str, int]:
    request.session["count"] = request.session.get("count", 0) + 1
    return {"count": request.session["count"]}


@app.get("/limited")
async def limited() -> dict[str, bool]:
    return {"ok": True}


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("boom")


@app.api_route("/form", methods=["GET", "POST"])
async def form(request: Request) -> dict[str, str]:
    return {"method": request.method}


@app.get(INSPECT_PATH)
async def inspect() -> dict[str, Any]:
    return inspect_data()


# The last added is the outermost, so add them innermost first.
for cls, options in reversed(stack()):
    app.add_middleware(cls, **options)
