"""CORSMiddleware against Starlette's: no Origin, a simple request, a preflight."""

from __future__ import annotations

from typing import Any

from asgi_kit import CORSMiddleware

from .driver import App, Scenario, json_app, make_scope, optional

OPTIONS: dict[str, Any] = {
    "allow_origins": ["https://www.example.com", "https://admin.example.com"],
    "allow_methods": ["GET", "POST", "PUT", "DELETE"],
    "allow_headers": ["X-Requested-With", "Authorization"],
    "allow_credentials": True,
    "expose_headers": ["X-Total-Count"],
}
ORIGIN = (b"origin", b"https://www.example.com")


def _starlette(app: App) -> App:
    from starlette.middleware.cors import CORSMiddleware as StarletteCORS

    return StarletteCORS(app, **OPTIONS)


def scenarios() -> list[Scenario]:
    bare = json_app()
    ours = CORSMiddleware(bare, **OPTIONS)
    anchors = {"starlette CORSMiddleware": optional(lambda: _starlette(bare))}
    return [
        Scenario("cors: request without Origin", bare=bare, ours=ours, anchors=anchors, goal=0.7),
        Scenario(
            "cors: simple request (allowed Origin)",
            bare=bare,
            ours=ours,
            anchors=anchors,
            scope=make_scope(extra_headers=[ORIGIN]),
            goal=0.7,
        ),
        Scenario(
            "cors: preflight",
            bare=bare,
            ours=ours,
            anchors=anchors,
            scope=make_scope(
                "OPTIONS",
                extra_headers=[
                    ORIGIN,
                    (b"access-control-request-method", b"PUT"),
                    (b"access-control-request-headers", b"authorization,content-type"),
                ],
            ),
            goal=0.7,
        ),
    ]
