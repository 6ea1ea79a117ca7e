"""Harness check: a no-op pure-ASGI middleware against Starlette's BaseHTTPMiddleware."""

from __future__ import annotations

from typing import Any

from asgi_kit._http import asgi3

from .driver import App, Scenario, json_app, optional


class PassThrough:
    """The cheapest possible pure-ASGI middleware."""

    def __init__(self, app: Any) -> None:
        self.app = asgi3(app)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def _base_http(app: App) -> App:
    from starlette.middleware.base import BaseHTTPMiddleware

    async def dispatch(request: Any, call_next: Any) -> Any:
        return await call_next(request)

    return BaseHTTPMiddleware(app, dispatch=dispatch)


def scenarios() -> list[Scenario]:
    bare = json_app()
    return [
        Scenario(
            "pass-through middleware",
            bare=bare,
            ours=PassThrough(bare),
            anchors={"starlette BaseHTTPMiddleware": optional(lambda: _base_http(bare))},
        )
    ]
