"""A small log-in/log-out app for the end-to-end session tests.

``app`` keeps the session in the signed cookie; ``redis_app`` keeps it in
Redis at ``$SESSIONS_REDIS_URL`` (only built when that variable is set).
"""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from asgi_kit import RedisStore, SessionMiddleware
from asgi_kit.sessions import regenerate_id


async def login(request: Request) -> JSONResponse:
    body = await request.json()
    regenerate_id(request)
    request.session["user"] = body["user"]
    return JSONResponse({"user": body["user"]})


async def me(request: Request) -> JSONResponse:
    request.session["visits"] = request.session.get("visits", 0) + 1
    return JSONResponse({"user": request.session.get("user"), "visits": request.session["visits"]})


async def logout(request: Request) -> JSONResponse:
    request.session.clear()
    return JSONResponse({"user": None})


async def peek(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.session.get("user")})


async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"user": websocket.session.get("user")})
    await websocket.close()


def build(**options: Any) -> SessionMiddleware:
    starlette = Starlette(
        routes=[
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/me", me),
            Route("/peek", peek),
            WebSocketRoute("/ws", ws),
        ]
    )
    return SessionMiddleware(starlette, "end-to-end-secret", **options)


app = build()
redis_app = (
    build(store=RedisStore(os.environ["SESSIONS_REDIS_URL"], prefix="e2e:"))
    if os.environ.get("SESSIONS_REDIS_URL")
    else None
)
